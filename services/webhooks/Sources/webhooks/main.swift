import WebhooksService
import ServiceKit

await ServiceRuntime.main(WebhooksService.descriptor())
