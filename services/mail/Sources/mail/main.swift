import MailService
import ServiceKit

await ServiceRuntime.main(.mail) { reader in
    MailService.descriptor(settings: MailSettings(reader: &reader))
}
