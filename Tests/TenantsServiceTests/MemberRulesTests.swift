import Foundation
import RampartModels
import ServicesTestSupport
import Testing

@testable import TenantsService

@Suite("TEN-10's member rules: only owners touch owners; a tenant keeps an active owner")
struct MemberRulesTests {
    static func member(_ role: Rampart_V1_MemberRole, _ status: Rampart_V1_MemberStatus = .active) -> Rampart_V1_Member {
        var member = Rampart_V1_Member()
        member.role = role
        member.status = status
        return member
    }

    @Test("every change of every role by every changer, with one owner and with two")
    func everyCase() {
        let (ada, bob) = (UUID(), UUID())
        let roles: [Rampart_V1_MemberRole] = [.owner, .admin, .member]
        let changers: [(role: Rampart_V1_MemberRole?, isService: Bool)] = [(.owner, false), (.admin, false), (.member, false), (nil, true)]
        for owners in [Set([ada]), Set([ada, bob])] {
            for before in roles {
                for after in roles {
                    for status in [Rampart_V1_MemberStatus.active, .disabled] {
                        for removing in [false, true] {
                            for changer in changers {
                                let target = before == .owner ? ada : UUID()
                                let outcome = Result { () throws(RampartError) in
                                    try MemberRules.check(
                                        target,
                                        from: Self.member(before),
                                        to: Self.member(after, status),
                                        removing: removing,
                                        activeOwners: owners,
                                        changer: changer
                                    )
                                }
                                let ownerTouched = before == .owner || after == .owner
                                let mayTouch = changer.role == .owner || changer.isService
                                let losesLastOwner = before == .owner && owners.count == 1 && (removing || after != .owner || status != .active)
                                switch outcome {
                                case .success:
                                    #expect((!ownerTouched || mayTouch) && !losesLastOwner)
                                case .failure(let error):
                                    #expect(ownerTouched && !mayTouch ? error.code == .permissionDenied : error.code == .failedPrecondition)
                                    #expect((ownerTouched && !mayTouch) || losesLastOwner)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
