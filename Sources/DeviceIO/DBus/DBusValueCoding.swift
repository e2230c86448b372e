#if canImport(Glibc)
import Glibc
#endif
internal import CDBus

/// Puts ``DBusValue``s into a message. ``check(_:_:)`` first: libdbus treats a wrong type, an invalid
/// path or a NUL inside a string as a programming error and aborts the process.
enum DBusValueWriter {
    /// Deeper nesting than BlueZ ever uses; the D-Bus limit is 32 arrays and 32 structs.
    static let maximumDepth = 32

    static func check(_ value: DBusValue, _ what: String) throws(DBusCallError) {
        guard isSingleCompleteType(value.signature) else {
            throw .invalid(what, "'\(value.signature)' is not a single complete D-Bus type")
        }
        try checkContents(value, what, depth: 0)
    }

    private static func isSingleCompleteType(_ signature: String) -> Bool {
        !signature.utf8.contains(0) && dbus_signature_validate_single(signature, nil) != 0
    }

    private static func checkContents(_ value: DBusValue, _ what: String, depth: Int) throws(DBusCallError) {
        guard depth <= maximumDepth else { throw .invalid(what, "values nest deeper than \(maximumDepth) levels") }
        switch value {
        case .byte, .bool, .int16, .uint16, .int32, .uint32, .int64, .uint64, .double:
            return
        case .string(let text):
            guard !text.utf8.contains(0) else { throw .invalid(what, "a string contains a NUL character") }
        case .objectPath(let path):
            guard DBusNames.isValidPath(path) else { throw .invalid(what, "'\(path)' is not a valid object path") }
        case .signature(let text):
            guard !text.utf8.contains(0), dbus_signature_validate(text, nil) != 0 else {
                throw .invalid(what, "'\(text)' is not a valid signature")
            }
        case .unixFD:
            throw .invalid(what, "VitalGate does not send file descriptors")
        case .array(let element, let items):
            for item in items {
                guard item.signature == element else {
                    throw .invalid(what, "an array of '\(element)' holds a '\(item.signature)'")
                }
                try checkContents(item, what, depth: depth + 1)
            }
        case .dictEntry(let key, let entryValue):
            try checkContents(key, what, depth: depth + 1)
            try checkContents(entryValue, what, depth: depth + 1)
        case .structure(let members):
            for member in members { try checkContents(member, what, depth: depth + 1) }
        case .variant(let inner):
            guard isSingleCompleteType(inner.signature) else {
                throw .invalid(what, "a variant holds '\(inner.signature)', not a single complete type")
            }
            try checkContents(inner, what, depth: depth + 1)
        }
    }

    /// Appends one checked value; false when libdbus ran out of memory.
    static func write(_ value: DBusValue, into iterator: inout DBusMessageIter) -> Bool {
        switch value {
        case .byte(let byte): return vg_dbus_append_byte(&iterator, byte) != 0
        case .bool(let flag): return vg_dbus_append_bool(&iterator, flag ? 1 : 0) != 0
        case .int16(let number): return vg_dbus_append_int16(&iterator, number) != 0
        case .uint16(let number): return vg_dbus_append_uint16(&iterator, number) != 0
        case .int32(let number): return vg_dbus_append_int32(&iterator, number) != 0
        case .uint32(let number): return vg_dbus_append_uint32(&iterator, number) != 0
        case .int64(let number): return vg_dbus_append_int64(&iterator, number) != 0
        case .uint64(let number): return vg_dbus_append_uint64(&iterator, number) != 0
        case .double(let number): return vg_dbus_append_double(&iterator, number) != 0
        case .string(let text): return vg_dbus_append_string(&iterator, text) != 0
        case .objectPath(let path): return vg_dbus_append_object_path(&iterator, path) != 0
        case .signature(let text): return vg_dbus_append_signature(&iterator, text) != 0
        case .unixFD: return false
        case .array(let element, let items):
            return container(VG_DBUS_TYPE_ARRAY, element, &iterator) { sub in
                items.allSatisfy { write($0, into: &sub) }
            }
        case .dictEntry(let key, let entryValue):
            return container(VG_DBUS_TYPE_DICT_ENTRY, nil, &iterator) { sub in
                write(key, into: &sub) && write(entryValue, into: &sub)
            }
        case .structure(let members):
            return container(VG_DBUS_TYPE_STRUCT, nil, &iterator) { sub in
                members.allSatisfy { write($0, into: &sub) }
            }
        case .variant(let inner):
            return container(VG_DBUS_TYPE_VARIANT, inner.signature, &iterator) { sub in
                write(inner, into: &sub)
            }
        }
    }

    private static func container(_ type: Int32, _ signature: String?, _ iterator: inout DBusMessageIter,
                                  _ body: (inout DBusMessageIter) -> Bool) -> Bool {
        var sub = DBusMessageIter()
        guard dbus_message_iter_open_container(&iterator, type, signature, &sub) != 0 else { return false }
        guard body(&sub) else {
            dbus_message_iter_abandon_container(&iterator, &sub)
            return false
        }
        return dbus_message_iter_close_container(&iterator, &sub) != 0
    }
}

/// Reads ``DBusValue``s out of a received message (libdbus validated it on receipt).
enum DBusValueReader {
    static func read(_ iterator: inout DBusMessageIter) -> DBusValue {
        let type = dbus_message_iter_get_arg_type(&iterator)
        switch type {
        case VG_DBUS_TYPE_BYTE:
            var value: UInt8 = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .byte(value)
        case VG_DBUS_TYPE_BOOLEAN:
            var value: dbus_bool_t = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .bool(value != 0)
        case VG_DBUS_TYPE_INT16:
            var value: Int16 = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .int16(value)
        case VG_DBUS_TYPE_UINT16:
            var value: UInt16 = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .uint16(value)
        case VG_DBUS_TYPE_INT32:
            var value: Int32 = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .int32(value)
        case VG_DBUS_TYPE_UINT32:
            var value: UInt32 = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .uint32(value)
        case VG_DBUS_TYPE_INT64:
            var value: Int64 = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .int64(value)
        case VG_DBUS_TYPE_UINT64:
            var value: UInt64 = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .uint64(value)
        case VG_DBUS_TYPE_DOUBLE:
            var value: Double = 0
            dbus_message_iter_get_basic(&iterator, &value)
            return .double(value)
        case VG_DBUS_TYPE_STRING, VG_DBUS_TYPE_OBJECT_PATH, VG_DBUS_TYPE_SIGNATURE:
            var pointer: UnsafePointer<CChar>?
            dbus_message_iter_get_basic(&iterator, &pointer)
            let text = pointer.map { String(cString: $0) } ?? ""
            switch type {
            case VG_DBUS_TYPE_OBJECT_PATH: return .objectPath(text)
            case VG_DBUS_TYPE_SIGNATURE: return .signature(text)
            default: return .string(text)
            }
        case VG_DBUS_TYPE_UNIX_FD:
            // libdbus hands over a duplicate the reader owns; nothing here uses descriptors, so close it.
            var descriptor: Int32 = -1
            dbus_message_iter_get_basic(&iterator, &descriptor)
            if descriptor >= 0 { Glibc.close(descriptor) }
            return .unixFD(-1)
        case VG_DBUS_TYPE_ARRAY:
            let signature = ownedSignature(&iterator)
            let element = String(signature.dropFirst())
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iterator, &sub)
            if element == "y" {
                var base: UnsafeMutableRawPointer?
                var count: Int32 = 0
                dbus_message_iter_get_fixed_array(&sub, &base, &count)
                guard let base, count > 0 else { return .array("y", []) }
                let bytes = UnsafeRawBufferPointer(start: base, count: Int(count))
                return .array("y", bytes.map(DBusValue.byte))
            }
            var items: [DBusValue] = []
            while dbus_message_iter_get_arg_type(&sub) != VG_DBUS_TYPE_INVALID {
                items.append(read(&sub))
                _ = dbus_message_iter_next(&sub)
            }
            return .array(element, items)
        case VG_DBUS_TYPE_DICT_ENTRY:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iterator, &sub)
            let key = read(&sub)
            _ = dbus_message_iter_next(&sub)
            return .dictEntry(key, read(&sub))
        case VG_DBUS_TYPE_STRUCT:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iterator, &sub)
            var members: [DBusValue] = []
            while dbus_message_iter_get_arg_type(&sub) != VG_DBUS_TYPE_INVALID {
                members.append(read(&sub))
                _ = dbus_message_iter_next(&sub)
            }
            return .structure(members)
        case VG_DBUS_TYPE_VARIANT:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(&iterator, &sub)
            return .variant(read(&sub))
        default:
            // A type newer than this reader; libdbus validated the message, so skipping it is safe.
            return .structure([])
        }
    }

    /// The signature of the value under the iterator (libdbus allocates it; freed here).
    private static func ownedSignature(_ iterator: inout DBusMessageIter) -> String {
        guard let raw = dbus_message_iter_get_signature(&iterator) else { return "" }
        defer { dbus_free(raw) }
        return String(cString: raw)
    }
}
