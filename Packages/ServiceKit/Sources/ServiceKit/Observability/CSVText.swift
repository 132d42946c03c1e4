#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// CSV for exports (audit log, access review): RFC 4180 quoting, and no cell a spreadsheet would
/// evaluate (OWASP "CSV injection"): a cell starting with = + - @, tab or carriage return gets a
/// leading '. Spreadsheets in locales whose list separator is `;` split cells there too, so a
/// `;` followed by one of those starts a formula as well: such a cell gets the ', and any cell
/// with a `;` or a tab is quoted, which keeps it one cell everywhere.
public enum CSVText {
    static let formulaStarts = "=+-@\t\r".unicodeScalars

    public static func cell(_ value: String) -> String {
        var value = value
        let scalars = Array(value.unicodeScalars)
        let startsFormula = scalars.first.map(formulaStarts.contains) ?? false
        let formulaAfterSemicolon = zip(scalars, scalars.dropFirst()).contains { $0 == ";" && formulaStarts.contains($1) }
        if startsFormula || formulaAfterSemicolon { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == ";" || $0 == "\t" }) else { return value }
        return "\"" + value.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}
