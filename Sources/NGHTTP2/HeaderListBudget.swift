/// The running size of one received header block, held to what we announced in
/// SETTINGS_MAX_HEADER_LIST_SIZE. nghttp2 1.52 announces that setting but never enforces it
/// (STACK-NOTES-2: a 100 KB list arrived whole; an HPACK block of 14 KB decoded to 40 MB),
/// so the `on_header` callback counts every decoded field here and stops the block the moment
/// it is over. A pure value: no I/O, tested as a value.
package struct HeaderListBudget: Equatable {
    /// Decoded bytes per block, RFC 9113 §10.5.1 accounting: name + value + 32 per field.
    let maxBytes: Int
    /// Fields per block. The byte limit alone lets ~500 empty fields through at 16 KiB; no
    /// real client sends more than a few dozen.
    let maxFields: Int
    private(set) var bytes = 0
    private(set) var fields = 0

    /// RFC 9113 §10.5.1: "the uncompressed size of field names and values … plus an overhead
    /// of 32 octets for each field".
    static let perFieldOverhead = 32

    init(maxBytes: Int, maxFields: Int) {
        self.maxBytes = maxBytes
        self.maxFields = maxFields
    }

    /// A new header block begins (HEADERS, with its CONTINUATIONs).
    mutating func reset() {
        bytes = 0
        fields = 0
    }

    /// Counts one decoded field; false once the block is over either limit.
    mutating func admit(nameLength: Int, valueLength: Int) -> Bool {
        fields += 1
        bytes += nameLength + valueLength + Self.perFieldOverhead
        return fields <= maxFields && bytes <= maxBytes
    }
}

/// Counts a connection's refused header blocks: one may be an honest mistake; a client that
/// keeps sending them is attacking (an HPACK bomb costs us decoding even when refused), and its
/// connection gets GOAWAY ENHANCE_YOUR_CALM.
package struct OversizedHeaderStrikes: Equatable {
    /// Refused blocks tolerated on one connection; the next one ends it.
    let tolerated: Int
    private(set) var count = 0

    init(tolerated: Int) {
        self.tolerated = tolerated
    }

    /// Records a refused block; true when the connection must now end.
    mutating func strike() -> Bool {
        count += 1
        return count > tolerated
    }
}
