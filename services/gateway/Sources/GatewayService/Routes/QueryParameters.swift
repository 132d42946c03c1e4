import Hummingbird
import RampartModels

/// A route's query string, strictly: only the parameters it documents, each at most once.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ request: Request, allowed: Set<String>) throws {
        for (name, value) in request.uri.queryParameters {
            let name = String(name)
            guard allowed.contains(name) else {
                throw RampartError.invalidArgument("unknown query parameter \(name.prefix(64).debugDescription)", field: String(name.prefix(64)))
            }
            guard values[name] == nil else { throw RampartError.invalidArgument("\(name) is given twice", field: name) }
            values[name] = String(value)
        }
    }

    /// A text value, refused when longer than `maximumBytes` or holding a control character.
    func text(_ name: String, maximumBytes: Int) throws -> String? {
        guard let value = values[name] else { return nil }
        guard value.utf8.count <= maximumBytes, !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw RampartError.invalidArgument("\(name) must be at most \(maximumBytes) bytes of text", field: name)
        }
        return value
    }

    func integer<Value: FixedWidthInteger>(_ name: String, in range: ClosedRange<Value>) throws -> Value? {
        guard let text = values[name] else { return nil }
        guard let value = Value(text), range.contains(value) else {
            throw RampartError.invalidArgument("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)", field: name)
        }
        return value
    }
}
