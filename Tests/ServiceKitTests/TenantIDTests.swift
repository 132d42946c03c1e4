import RampartModels
import ServiceKit
import Testing

@Suite("TenantID: only 32 hex digits reach SQL (TEN-2)")
struct TenantIDTests {
    @Test("32 lowercase hex digits and the UUID form are accepted")
    func accepted() throws {
        let id = try #require(TenantID("0123456789abcdef0123456789abcdef"))
        #expect(id.hex == "0123456789abcdef0123456789abcdef")
        #expect(id.schemaName == "t_0123456789abcdef0123456789abcdef")
        let uuid = try #require(TenantID("01234567-89ab-cdef-0123-456789abcdef"))
        #expect(uuid == id)
        #expect(id.uuidString == "01234567-89ab-cdef-0123-456789abcdef")
        #expect(quotedSchema(id) == "\"t_0123456789abcdef0123456789abcdef\"")
        #expect(TenantID(TenantID.random().hex) != nil)
    }

    @Test(
        "anything but hex is refused",
        arguments: [
            "", "0", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
            "0123456789abcdef0123456789abcdeg", "0123456789abcdef\"; DROP SCHEMA public; --",
            "0123456789abcdef0123456789abcd\u{0}f", "x123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcd ef", "../../../../0123456789abcdef01234",
            "01234567-89ab-cdef-0123-456789abcdeg", "0123456789-abcdef0123456789abcdef",
            "０１２３４５６７８９ａｂｃｄｅｆ０１２３４５６７８９ａｂｃｄｅｆ", "0123456789abcdef0123456789abcd\u{0661}\u{0662}",
        ]
    )
    func refused(_ text: String) {
        #expect(TenantID(text) == nil)
    }
}

@Suite("SQL statement splitting for migrations")
struct SQLStatementTests {
    @Test("splits at top-level semicolons only")
    func splitting() {
        let sql = """
            -- a comment; not a split
            CREATE TABLE a (x text DEFAULT 'semi;colon', "we;ird" int);
            /* block; /* nested; */ still comment; */
            CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
            CREATE FUNCTION g() RETURNS int AS $body$ BEGIN RETURN 2; END $body$ LANGUAGE plpgsql;
            INSERT INTO a VALUES ('it''s; fine', 1);
            INSERT INTO a VALUES (E'back\\'slash;', 2)
            ;
            -- trailing comment only
            """
        let statements = splitSQLStatements(sql)
        #expect(statements.count == 5)
        #expect(statements[0].hasSuffix("\"we;ird\" int)"))
        #expect(statements[1].contains("$$ SELECT 1; $$"))
        #expect(statements[2].contains("RETURN 2; END"))
        #expect(statements[3].contains("'it''s; fine'"))
        #expect(statements[4].contains("E'back\\'slash;'"))
    }

    @Test("a $1 parameter is not a dollar quote")
    func parameters() {
        #expect(splitSQLStatements("SELECT $1; SELECT $2").count == 2)
    }
}
