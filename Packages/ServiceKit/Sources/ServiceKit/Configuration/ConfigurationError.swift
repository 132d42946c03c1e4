/// Every problem found in the environment at once, so that one start-up attempt tells an
/// operator everything to fix.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]

    public init(problems: [String]) {
        self.problems = problems
    }

    public var description: String {
        "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
