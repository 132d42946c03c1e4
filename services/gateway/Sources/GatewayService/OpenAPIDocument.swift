import Foundation
import NIOCore
import ServiceKit

/// The public API's OpenAPI 3.1 document (api/openapi.json, written by `make openapi`), a
/// resource of this target: served at /openapi.json, and read for the methods each path takes
/// (a documented path asked with another method is a 405 with `Allow`, RFC 9110).
struct OpenAPIDocument: Sendable {
    let json: ByteBuffer
    private let routes: [(template: [Substring], methods: [String])]

    /// The document shipped beside the executable (`gateway_GatewayService.resources`).
    static func bundled() throws -> OpenAPIDocument {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json") else {
            throw ConfigurationError(problems: ["the OpenAPI document is missing: ship gateway_GatewayService.resources beside the executable"])
        }
        return try OpenAPIDocument(Data(contentsOf: url))
    }

    init(_ data: Data) throws {
        json = ByteBuffer(bytes: data)
        routes = try JSONDecoder().decode(Document.self, from: data).paths.map { path, operations in
            (path.split(separator: "/", omittingEmptySubsequences: false), operations.methods)
        }
    }

    /// The methods the document gives the path template `path` matches, if any.
    func methods(documentedFor path: String) -> [String]? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        return routes.first { template, _ in
            template.count == segments.count && zip(template, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }?.methods
    }

    private struct Document: Decodable {
        let paths: [String: Operations]
    }

    private struct Operations: Decodable {
        let methods: [String]

        init(from decoder: any Decoder) throws {
            let verbs = ["get", "put", "post", "delete", "patch"]
            methods = try decoder.container(keyedBy: Key.self).allKeys.map(\.stringValue).filter(verbs.contains).map { $0.uppercased() }.sorted()
        }
    }

    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
