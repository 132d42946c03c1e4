import Foundation

/// The repository's root folder, for tests that read shipped files (deploy/).
public let repositoryRoot: URL = {
    // Packages/TestSupport/Sources/TestSupport/Repository.swift
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<5 { url.deleteLastPathComponent() }
    return url
}()
