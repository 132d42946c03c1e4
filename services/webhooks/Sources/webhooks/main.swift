import ServiceKit
import WebhooksService

await ServiceRuntime.main(.webhooks) { reader in
    WebhooksService.descriptor(settings: WebhooksSettings(reader: &reader))
}
