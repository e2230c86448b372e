import Foundation
import Testing
@testable import Uplink

/// Retry-After in both RFC 9110 forms, capped, and nil for anything else.
@Suite("Retry-After")
struct HTTPRetryAfterTests {
    /// 1994-11-06 08:49:37 UTC, the RFC's example date, as seconds since 1970.
    static let exampleDate = Date(timeIntervalSince1970: 784_111_777)

    @Test("delta-seconds", arguments: [("120", 120), ("0", 0), (" 30 ", 30), ("3600", 3600)])
    func deltaSeconds(value: String, seconds: Int64) {
        #expect(retryAfter(value, now: Date()) == .seconds(seconds))
    }

    @Test("long waits are capped at the maximum")
    func capped() {
        #expect(retryAfter("86400", now: Date()) == .seconds(3600))
        #expect(retryAfter("99999999999999999999999999", now: Date()) == .seconds(3600))
        #expect(retryAfter("600", now: Date(), maximum: .seconds(60)) == .seconds(60))
        let farFuture = "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(retryAfter(farFuture, now: Self.exampleDate.addingTimeInterval(-86_400)) == .seconds(3600))
    }

    @Test("the three HTTP-date forms, 90 s ahead",
          arguments: ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"])
    func httpDates(value: String) {
        #expect(retryAfter(value, now: Self.exampleDate.addingTimeInterval(-90)) == .seconds(90))
    }

    @Test("an HTTP-date in the past means now")
    func pastDate() {
        #expect(retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now: Self.exampleDate.addingTimeInterval(5)) == .zero)
    }

    @Test("the date arithmetic holds across leap years and centuries")
    func calendar() {
        // 2000-02-29 (a leap day in a century year) and 2100-03-01 (2100 is not a leap year).
        #expect(httpDate("Tue, 29 Feb 2000 12:00:00 GMT") == Date(timeIntervalSince1970: 951_825_600))
        #expect(httpDate("Mon, 01 Mar 2100 00:00:00 GMT") == Date(timeIntervalSince1970: 4_107_542_400))
        #expect(httpDate("Thu, 01 Jan 1970 00:00:00 GMT") == Date(timeIntervalSince1970: 0))
    }

    @Test("impossible calendar dates are nil, in every form",
          arguments: ["Sat, 31 Feb 2025 08:00:00 GMT", "Mon, 29 Feb 2100 00:00:00 GMT", "Thu, 31 Apr 2025 12:00:00 GMT",
                      "Monday, 31-Feb-25 08:00:00 GMT", "Mon Feb 31 08:00:00 2025", "Sun, 00 Nov 1994 08:49:37 GMT"])
    func impossibleDates(value: String) {
        #expect(httpDate(value) == nil)
        #expect(retryAfter(value, now: Self.exampleDate) == nil)
    }

    @Test("a leap second is one second past :59")
    func leapSecond() {
        // 2016-12-31 23:59:60 UTC was a real leap second; POSIX time has no slot for it.
        #expect(httpDate("Sat, 31 Dec 2016 23:59:60 GMT") == Date(timeIntervalSince1970: 1_483_228_800))
        #expect(httpDate("Sat, 31 Dec 2016 23:59:61 GMT") == nil)
    }

    @Test("garbage is nil", arguments: ["", "soon", "-5", "1.5", "+30", "0x10", "Sun, 06 Nov 1994 08:49:37 PST",
                                        "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                                        "Sun, 06 Nov 1994 25:00:00 GMT", "06 Nov 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT"])
    func garbage(value: String) {
        #expect(retryAfter(value, now: Self.exampleDate) == nil)
    }
}
