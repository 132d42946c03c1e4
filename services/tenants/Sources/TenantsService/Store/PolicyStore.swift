import Logging
import PostgresNIO
import RampartModels
import ServiceKit

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Each tenant's `policies` row (MFA-7, AUTH-9, SSO-3) and `ip_allowlist` (TEN-11).
struct PolicyStore: Sendable {
    let database: Database
    let logger: Logger

    /// The policies with the allowlist; nil when the row is missing.
    func read(_ tenant: TenantID) async throws -> Rampart_V1_TenantPolicies? {
        let rows = try await database.query(
            """
            SELECT mfa_requirement, sso_enforced, password_rotation_days,
                   ARRAY(SELECT a.network::text FROM \(schema: tenant).ip_allowlist a ORDER BY a.network), break_glass_owners::text[]
            FROM \(schema: tenant).policies
            """
        )
        guard let (mfa, sso, rotation, networks, breakGlass) = try await rows.first(decoding: (String, Bool, Int32, [String], [String]).self)
        else { return nil }
        var policies = Rampart_V1_TenantPolicies()
        policies.mfaRequirement = Rampart_V1_MfaRequirement(name: mfa) ?? .none
        policies.ssoEnforced = sso
        policies.passwordRotationDays = UInt32(rotation)
        policies.ipAllowlist = networks
        policies.breakGlassOwners = breakGlass
        return policies
    }

    /// Sets what is given, keeps the rest.
    func update(
        _ tenant: TenantID,
        mfaRequirement: String?,
        ssoEnforced: Bool?,
        passwordRotationDays: Int32?,
        breakGlassOwners: [UUID]? = nil
    ) async throws {
        try await database.query(
            """
            UPDATE \(schema: tenant).policies SET mfa_requirement = coalesce(\(mfaRequirement)::text, mfa_requirement),
                   sso_enforced = coalesce(\(ssoEnforced)::boolean, sso_enforced),
                   break_glass_owners = coalesce(\(breakGlassOwners)::uuid[], break_glass_owners),
                   password_rotation_days = coalesce(\(passwordRotationDays)::integer, password_rotation_days),
                   updated_at = now()
            """
        )
    }

    /// The allowlist, canonical CIDRs in order.
    func allowlist(_ tenant: TenantID) async throws -> [String] {
        let rows = try await database.query("SELECT a.network::text FROM \(schema: tenant).ip_allowlist a ORDER BY a.network")
        var networks: [String] = []
        for try await network in rows.decode(String.self) { networks.append(network) }
        return networks
    }

    /// Replaces the allowlist in one transaction.
    func replaceAllowlist(_ tenant: TenantID, with networks: [IPNetwork]) async throws {
        try await database.transaction { connection in
            try await connection.query("DELETE FROM \(schema: tenant).ip_allowlist", logger: logger)
            for network in networks {
                try await connection.query(
                    "INSERT INTO \(schema: tenant).ip_allowlist (network) VALUES (\(network.description)::cidr)",
                    logger: logger
                )
            }
        }
    }
}
