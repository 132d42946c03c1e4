import Hummingbird
import RampartModels

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension RequestContext {
    /// A UUID path parameter, lower case as the services store it.
    func pathID(_ parameter: String, naming what: String = "an ID") throws -> String {
        guard let text = parameters.get(parameter), text.utf8.count == 36, let id = UUID(uuidString: text) else {
            throw RampartError.invalidArgument("\(parameter) must be \(what)", field: parameter)
        }
        return id.uuidString.lowercased()
    }

    /// A member's user ID from the path.
    func pathUser(_ parameter: String = "user_id") throws -> String {
        try pathID(parameter, naming: "a member's user ID")
    }
}

/// A body's ID that repeats the path's: the same, or left out. `what` names the thing
/// ("member", "endpoint").
func sameID(_ bodyID: String, as pathID: String, field: String, naming what: String) throws -> String {
    guard bodyID.isEmpty || bodyID.lowercased() == pathID else {
        throw RampartError.invalidArgument("\(field) in the body names another \(what) than the path", field: field)
    }
    return pathID
}
