import ServiceKit
import WebhooksService

await ServiceRuntime.main(WebhooksService.descriptor())
