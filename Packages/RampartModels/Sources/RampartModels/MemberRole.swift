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

    public init?(name: String) {
        guard let known = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = known
    }

    /// The role, when it is one a member can hold (not unspecified nor unknown to this build).
    public var held: Self? { name == nil ? nil : self }

    /// TEN-10's order: an owner may do all an admin may, an admin all a member may.
    public func includes(_ other: Self) -> Bool { rank >= other.rank }

    private var rank: Int {
        switch self {
        case .owner: 3
        case .admin: 2
        case .member: 1
        default: 0
        }
    }
}

extension Rampart_V1_TenantStatus {
    /// The status as tenants' registry spells it (provisioning, active, suspended, deleting,
    /// deleted); nil when unspecified.
    public var name: String? {
        switch self {
        case .provisioning: "provisioning"
        case .active: "active"
        case .suspended: "suspended"
        case .deleting: "deleting"
        case .deleted: "deleted"
        default: nil
        }
    }

    public init?(name: String) {
        guard let known = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = known
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
