import RampartModels

/// Splits a migration file into statements at top-level semicolons. postgres-nio speaks only
/// the extended protocol, which takes one statement per query.
///
/// Semicolons inside quoted strings (`'…'`, `E'…'`), quoted identifiers (`"…"`), dollar-quoted
/// bodies (`$$…$$`, `$tag$…$tag$`) and comments (`--`, nested `/* */`) do not split.
public func splitSQLStatements(_ sql: String) -> [String] {
    let characters = Array(sql.unicodeScalars)
    var statements: [String] = []
    var current = String.UnicodeScalarView()
    var index = 0

    func flush() {
        let statement = String(current).trimmingWhitespace
        if !statement.isEmpty, !statement.isOnlyComments { statements.append(statement) }
        current = String.UnicodeScalarView()
    }

    while index < characters.count {
        let character = characters[index]
        let next: Unicode.Scalar? = index + 1 < characters.count ? characters[index + 1] : nil
        switch character {
        case "-" where next == "-":
            while index < characters.count, characters[index] != "\n" {
                current.append(characters[index])
                index += 1
            }
            continue
        case "/" where next == "*":
            var depth = 0
            repeat {
                if characters[index] == "/", index + 1 < characters.count, characters[index + 1] == "*" {
                    depth += 1
                    current.append(contentsOf: [characters[index], characters[index + 1]])
                    index += 2
                } else if characters[index] == "*", index + 1 < characters.count, characters[index + 1] == "/" {
                    depth -= 1
                    current.append(contentsOf: [characters[index], characters[index + 1]])
                    index += 2
                } else {
                    current.append(characters[index])
                    index += 1
                }
            } while depth > 0 && index < characters.count
            continue
        case "'", "\"":
            let escapes = character == "'" && index > 0 && (characters[index - 1] == "E" || characters[index - 1] == "e")
            current.append(character)
            index += 1
            while index < characters.count {
                let inner = characters[index]
                current.append(inner)
                index += 1
                if escapes, inner == "\\", index < characters.count {
                    current.append(characters[index])
                    index += 1
                } else if inner == character {
                    // A doubled quote is an escaped quote, not the end.
                    if index < characters.count, characters[index] == character {
                        current.append(characters[index])
                        index += 1
                    } else {
                        break
                    }
                }
            }
            continue
        case "$":
            if let tag = dollarTag(characters, at: index) {
                current.append(contentsOf: tag)
                index += tag.count
                while index < characters.count {
                    if characters[index] == "$", Array(characters[index..<min(characters.count, index + tag.count)]) == tag {
                        current.append(contentsOf: tag)
                        index += tag.count
                        break
                    }
                    current.append(characters[index])
                    index += 1
                }
                continue
            }
        case ";":
            flush()
            index += 1
            continue
        default:
            break
        }
        current.append(character)
        index += 1
    }
    flush()
    return statements
}

/// `$$` or `$tag$` starting at `index`, where a tag is an identifier not starting with a digit
/// (a `$1` parameter is not a tag).
private func dollarTag(_ characters: [Unicode.Scalar], at index: Int) -> [Unicode.Scalar]? {
    var end = index + 1
    while end < characters.count {
        let character = characters[end]
        if character == "$" { return Array(characters[index...end]) }
        let isIdentifier = character == "_" || character.properties.isAlphabetic || (end > index + 1 && ("0"..."9").contains(character))
        guard isIdentifier else { return nil }
        end += 1
    }
    return nil
}

extension String {
    /// True when every line is blank or a `--` comment (what remains after a final `;`).
    var isOnlyComments: Bool {
        split(separator: "\n").allSatisfy { line in
            let trimmed = String(line).trimmingWhitespace
            return trimmed.isEmpty || trimmed.hasPrefix("--")
        }
    }
}
