import Foundation
import PropertyBased
import RampartModels
import ServiceKit
import ServicesTestSupport
import TestSupport
import Testing

/// The check API against a straightforward statement of SPEC section 6, over random bindings:
/// a user may do an action when their tenant role grants it, or their role on that very board
/// does; a key, when one of its scopes grants it and its creator may.
@Suite("PERM-1, PERM-2 property: the check API agrees with a reference evaluation")
struct PermissionsPropertyTests {
    static let everything: Set<String> = [
        "members.manage", "audit.read", "api_keys.manage", "webhooks.manage", "settings.manage", "boards.create", "boards.read", "boards.write",
        "boards.delete", "boards.share", "items.read", "items.write", "updates.read", "updates.write",
    ]
    static let tenantRoles: [String: Set<String>] = [
        "owner": everything.union(["tenant.delete"]), "admin": everything, "member": ["boards.create"],
    ]
    static let boardRoles: [String: Set<String>] = [
        "owner": ["boards.read", "boards.write", "boards.delete", "boards.share", "items.read", "items.write", "updates.read", "updates.write"],
        "editor": ["boards.read", "boards.write", "items.read", "items.write", "updates.read", "updates.write"],
        "viewer": ["boards.read", "items.read", "updates.read"],
    ]
    static let scopes: [String: Set<String>] = [
        "boards:read": ["boards.read"], "boards:write": ["boards.write", "boards.create"], "items:read": ["items.read"],
        "items:write": ["items.write"], "updates:read": ["updates.read"], "updates:write": ["updates.write"],
    ]
    static let actions = ["boards.read", "boards.write", "boards.delete", "boards.share", "items.write", "members.manage"]
    static let roles = ["owner", "editor", "viewer"]

    /// One change: user index, board index, role index (3: remove the role).
    typealias Change = (user: Int, board: Int, role: Int)

    @Test("random bindings, every user, board and action, for users and for API keys")
    func agreesWithReference() async throws {
        let world = try await PermissionsWorld.start()
        try await stopping(world) {
            let users = [world.owner, try await world.member(.admin), try await world.member(), try await world.member(), try await world.member()]
            let tenantRole = ["owner", "admin", "member", "member", "member"]
            let change = zip(Gen.int(in: 0...4), Gen.int(in: 0...2), Gen.int(in: 0...3)).map { Change($0, $1, $2) }
            let keyScopes = Gen.element(of: Array(Self.scopes.keys)).compactMap { $0 }.array(of: 0...3)

            await propertyCheck(count: 12, input: change.array(of: 1...14).withoutShrink(), keyScopes.withoutShrink()) { changes, scopes in
                let boards = (0..<3).map { "boards/p\(UUID().uuidString.prefix(8).lowercased())\($0)" }
                var bound: [String: [Int: String]] = [:]
                var revision: UInt64 = 0
                for change in changes {
                    let board = boards[change.board]
                    let role = change.role < 3 ? Self.roles[change.role] : nil
                    let current = bound[board, default: [:]]
                    let owners = current.filter { $0.value == "owner" }.map(\.key)
                    let expected: RampartError.Code? =
                        if role == nil, current[change.user] == nil { .notFound } else if owners == [change.user], role != "owner" {
                            .failedPrecondition
                        } else {
                            nil
                        }
                    do {
                        revision = try await world.setRole(board, users[change.user], role).revision
                        #expect(expected == nil, "\(change) succeeded, expected \(String(describing: expected))")
                        bound[board, default: [:]][change.user] = role
                    } catch let error as RampartError {
                        #expect(error.code == expected, "\(change): \(error)")
                    }
                }

                func reference(_ user: Int, _ action: String, _ board: String, scopes: [String]?) -> Bool {
                    if let scopes, !scopes.contains(where: { Self.scopes[$0]!.contains(action) }) { return false }
                    if Self.tenantRoles[tenantRole[user]]!.contains(action) { return true }
                    return bound[board]?[user].map { Self.boardRoles[$0]!.contains(action) } ?? false
                }
                for asKey in [false, true] {
                    var batch = Rampart_V1_BatchCheckRequest()
                    var expected: [Bool] = []
                    for (user, principal) in users.enumerated() {
                        for board in boards {
                            for action in Self.actions {
                                var check = Rampart_V1_CheckRequest()
                                check.principal = asKey ? "api_key:\(UUID().uuidString.lowercased())" : principal
                                if asKey {
                                    check.apiKeyCreator = principal
                                    check.apiKeyScopes = scopes
                                }
                                check.action = action
                                check.resource = board
                                check.atLeastRevision = revision
                                batch.checks.append(check)
                                expected.append(reference(user, action, board, scopes: asKey ? scopes : nil))
                            }
                        }
                    }
                    let answers: Rampart_V1_BatchCheckReply = try await world.cluster.call(
                        Subjects.Permissions.batchCheck,
                        batch,
                        tenant: world.tenant,
                        principal: "system:gateway"
                    )
                    for (index, answer) in answers.results.enumerated() where answer.allowed != expected[index] {
                        let check = batch.checks[index]
                        Issue.record("\(check.principal) \(check.action) \(check.resource) scopes \(scopes): got \(answer.reason), bound \(bound)")
                    }
                }
            }
        }
    }
}
