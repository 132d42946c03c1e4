import RampartModels

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// TEN-10's rules for a change to a member (role, status, removal): only an owner, or a
/// Rampart service, touches an owner or makes one; and a tenant always keeps an active owner.
enum MemberRules {
    /// Refuses the change from `before` to `after` of `member`, made by `changer`, when the
    /// tenant's active owners are `activeOwners`.
    static func check(
        _ member: UUID,
        from before: Rampart_V1_Member,
        to after: Rampart_V1_Member,
        removing: Bool,
        activeOwners: Set<UUID>,
        changer: (role: Rampart_V1_MemberRole?, isService: Bool)
    ) throws(RampartError) {
        let touchesOwner = before.role == .owner || after.role == .owner
        if touchesOwner, !(changer.role == .owner || changer.isService) {
            throw RampartError(.permissionDenied, "only an owner changes an owner or makes one")
        }
        let stillOwner = !removing && after.role == .owner && after.status == .active
        if activeOwners.contains(member), !stillOwner, activeOwners.count == 1 {
            throw RampartError(.failedPrecondition, "the last owner cannot be removed, disabled or demoted: make someone else owner first")
        }
    }
}
