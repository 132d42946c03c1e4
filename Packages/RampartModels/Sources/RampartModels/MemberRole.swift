extension Rampart_V1_MemberRole {
    /// The role as tokens and tables spell it (owner, admin, member); nil when unspecified.
    public var name: String? {
        switch self {
        case .owner: "owner"
        case .admin: "admin"
        case .member: "member"
        default: nil
        }
    }
}
