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
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// ISO 8601 in UTC with milliseconds, e.g. 2026-11-23T09:15:02.031Z (civil-from-days).
    public static func utcTimestamp(milliseconds: Int64) -> String {
        let millis = ((milliseconds % 1000) + 1000) % 1000
        let seconds = (milliseconds - millis) / 1000
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay % 3600 / 60)):\(two(secondOfDay % 60)).\(fraction)Z"
    }
}
