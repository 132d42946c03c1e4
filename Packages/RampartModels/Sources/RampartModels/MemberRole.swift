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

extension Rampart_V1_MfaRequirement {
    /// The requirement as tenants' policies table spells it (none, admins, everyone); nil for a
    /// value this build does not know.
    public var name: String? {
        switch self {
        case .none: "none"
        case .admins: "admins"
        case .everyone: "everyone"
        case .UNRECOGNIZED: nil
        }
    }

    public init?(name: String) {
        guard let known = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = known
    }

    /// MFA-7: whether a member in `role` must sign in with MFA.
    public func covers(_ role: Rampart_V1_MemberRole) -> Bool {
        switch self {
        case .everyone: true
        case .admins: role == .owner || role == .admin
        case .none, .UNRECOGNIZED: false
        }
    }
}
