import PostgresNIO

/// What a log line says about `error`. PostgresNIO's errors describe themselves as a generic
/// sentence on purpose (their debug form holds the query's bind values); this keeps what an
/// operator needs, the SQLSTATE and the server's message, and leaves the values out.
public func loggable(_ error: any Error) -> String {
    switch error {
    case let error as PSQLError:
        guard let server = error.serverInfo else { return "PostgreSQL \(error.code)" }
        let detail = server[.detail].map { " (\($0))" } ?? ""
        return "PostgreSQL \(server[.sqlState] ?? "?"): \(server[.message] ?? "")\(detail)"
    case let error as PostgresTransactionError:
        let inner = error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError
        return inner.map { "transaction: \(loggable($0))" } ?? "transaction failed"
    default:
        return "\(error)"
    }
}
