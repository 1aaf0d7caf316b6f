#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of each fuzz target into fuzz/corpus/<target>/.

The seeds are well-formed inputs laid out as the kernel lays them out, so
that the fuzzer starts from deep inside each parser instead of having to
discover the formats byte by byte. Run it after changing a format; the
output is committed.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# linux/target_core_user.h, mailbox version 2
MAILBOX_SIZE = 128
OP_PAD, OP_CMD, OP_TMR = 0, 1, 2
CAP_OOOC, CAP_READ_LEN, CAP_TMR = 1, 2, 4
CMD_ENTRY_SIZE = 112
IOV_OFFSET = 48
IOVEC_SIZE = 16


def write_seed(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ ring

class Ring:
    def __init__(self, cmdr_size=1024, data_size=8192, flags=CAP_OOOC | CAP_READ_LEN,
                 cmdr_off=MAILBOX_SIZE):
        self.cmdr_off = cmdr_off
        self.cmdr_size = cmdr_size
        self.data_off = cmdr_off + cmdr_size
        self.map = bytearray(self.data_off + data_size)
        self.flags = flags
        self.head = 0
        self.tail = 0

    def _len_op(self, op, length):
        return (length & ~7) | op

    def pad(self, length):
        offset = self.cmdr_off + self.head
        struct.pack_into("<I", self.map, offset, self._len_op(OP_PAD, length))
        self.head = (self.head + length) % self.cmdr_size

    def tmr(self, tmr_type=1, cmd_ids=()):
        length = (32 + 2 * len(cmd_ids) + 7) & ~7
        offset = self.cmdr_off + self.head
        struct.pack_into("<IHBB", self.map, offset, self._len_op(OP_TMR, length), 0, 0, 0)
        struct.pack_into("<BBHI", self.map, offset + 8, tmr_type, 0, 0, len(cmd_ids))
        for i, cmd_id in enumerate(cmd_ids):
            struct.pack_into("<H", self.map, offset + 32 + 2 * i, cmd_id)
        self.head = (self.head + length) % self.cmdr_size

    def command(self, cmd_id, cdb, iovs=()):
        cdb_position = max(IOV_OFFSET + IOVEC_SIZE * len(iovs), CMD_ENTRY_SIZE)
        length = (cdb_position + len(cdb) + 7) & ~7
        if self.cmdr_size - self.head < length:
            self.pad(self.cmdr_size - self.head)
        offset = self.cmdr_off + self.head
        self.map[offset:offset + length] = bytes(length)
        struct.pack_into("<IHBB", self.map, offset, self._len_op(OP_CMD, length), cmd_id, 0, 0)
        struct.pack_into("<IIIIQ", self.map, offset + 8, len(iovs), 0, 0, 0,
                         offset + cdb_position)
        for i, (data_offset, data_length) in enumerate(iovs):
            struct.pack_into("<QQ", self.map, offset + IOV_OFFSET + IOVEC_SIZE * i,
                             self.data_off + data_offset, data_length)
        self.map[offset + cdb_position:offset + cdb_position + len(cdb)] = cdb
        self.head = (self.head + length) % self.cmdr_size

    def image(self):
        struct.pack_into("<HHII", self.map, 0, 2, self.flags, self.cmdr_off, self.cmdr_size)
        struct.pack_into("<I", self.map, 12, self.head)
        struct.pack_into("<I", self.map, 64, self.tail)
        return bytes(self.map)


READ_10 = bytes([0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0])
WRITE_10 = bytes([0x2a, 0, 0, 0, 0, 8, 0, 0, 8, 0])
TEST_UNIT_READY = bytes(6)
# Odd opcodes are completed late by the fuzz target, opcodes with bit 1 with CHECK CONDITION.
VERIFY_10 = bytes([0x2f, 0, 0, 0, 0, 0, 0, 0, 1, 0])
READ_16 = bytes([0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
VARIABLE = bytes([0x7f, 0, 0, 0, 0, 0, 0, 0x18]) + bytes(24)


def ring_seeds():
    ring = Ring()
    ring.command(1, TEST_UNIT_READY)
    write_seed("ring", "one-tur", ring.image())

    ring = Ring()
    ring.command(7, READ_10, [(0, 512)])
    ring.command(8, WRITE_10, [(4096, 2048), (512, 2048)])
    ring.command(9, VERIFY_10)
    ring.command(10, READ_16, [(0, 512)])
    write_seed("ring", "mixed", ring.image())

    ring = Ring(cmdr_size=512)
    for i in range(12):
        ring.command(i + 1, READ_10 if i % 2 else VERIFY_10, [(i * 128, 128)])
        ring.tail = ring.head if i == 5 else ring.tail
    write_seed("ring", "wrapped", ring.image())

    ring = Ring(flags=CAP_OOOC | CAP_READ_LEN | CAP_TMR)
    ring.command(3, READ_10, [(0, 512)])
    ring.tmr(1, [3])
    ring.pad(64)
    ring.command(4, VARIABLE)
    write_seed("ring", "tmr-pad-variable", ring.image())

    ring = Ring(flags=0)
    ring.command(5, WRITE_10, [(8000, 4096)])
    write_seed("ring", "data-beyond-map", ring.image())


# --------------------------------------------------------------- netlink

NLA_ALIGN = 4
CMD_ADDED, CMD_REMOVED, CMD_RECONFIG = 1, 2, 3
ATTR_DEVICE, ATTR_MINOR, ATTR_DEV_CFG, ATTR_DEV_SIZE, ATTR_WRITECACHE, ATTR_DEVICE_ID = \
    1, 2, 4, 5, 6, 8


def attribute(kind, payload):
    length = 4 + len(payload)
    padding = (-length) % NLA_ALIGN
    return struct.pack("<HH", length, kind) + payload + bytes(padding)


def string(text):
    return text.encode() + b"\0"


def netlink_message(command, attributes, family=0x1b):
    body = struct.pack("<BBH", command, 2, 0) + b"".join(attributes)
    return struct.pack("<IHHII", 16 + len(body), family, 0, 0, 0) + body


def device_attributes(name="tcm-user/1/disk0/alloc/", minor=0, device_id=1):
    return [attribute(ATTR_DEVICE, string(name)),
            attribute(ATTR_MINOR, struct.pack("<I", minor)),
            attribute(ATTR_DEVICE_ID, struct.pack("<I", device_id))]


def netlink_seeds():
    write_seed("netlink", "added", netlink_message(CMD_ADDED, device_attributes()))
    write_seed("netlink", "removed", netlink_message(
        CMD_REMOVED, device_attributes("tcm-user/3/file0/file//var/lib/disk0.img", 2, 9)))
    write_seed("netlink", "reconfig-config", netlink_message(
        CMD_RECONFIG, device_attributes() +
        [attribute(ATTR_DEV_CFG, string("alloc/;timeout=30;"))]))
    write_seed("netlink", "reconfig-size", netlink_message(
        CMD_RECONFIG, device_attributes() +
        [attribute(ATTR_DEV_SIZE, struct.pack("<Q", 1 << 30))]))
    write_seed("netlink", "reconfig-write-cache", netlink_message(
        CMD_RECONFIG, device_attributes() + [attribute(ATTR_WRITECACHE, b"\1")]))
    write_seed("netlink", "no-device-id", netlink_message(
        CMD_ADDED, device_attributes()[:2]))


# ------------------------------------------------------------------ scsi

def scsi_command(cdb, data=b"", behaviour=0):
    cdb = bytes(cdb).ljust(32, b"\0")
    return bytes([behaviour]) + cdb + struct.pack(">H", len(data)) + data


def be(value, size):
    return value.to_bytes(size, "big")


def scsi_seeds():
    # geometry: unmap + write cache, 64 blocks of 512, 16 blocks per transfer
    geometry = bytes([0x03, 64, 16, 0])
    inquiry = [scsi_command([0x12, 0, 0, 0, 96, 0], bytes(96))]
    for page in (0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2):
        inquiry.append(scsi_command([0x12, 1, page, 0, 255, 0], bytes(255)))
    write_seed("scsi", "inquiry", geometry + b"".join(inquiry))

    capacity = [scsi_command([0x25] + [0] * 9, bytes(8)),
                scsi_command([0x9e, 0x10] + [0] * 8 + list(be(32, 4)) + [0, 0], bytes(32))]
    write_seed("scsi", "read-capacity", bytes([0x01, 64, 16, 1]) + b"".join(capacity))

    data = bytes(range(256)) * 4
    io = [scsi_command([0x2a, 0, 0, 0, 0, 4, 0, 0, 2, 0], data),
          scsi_command([0x28, 0, 0, 0, 0, 4, 0, 0, 2, 0], bytes(1024), behaviour=0x05),
          scsi_command([0x2a, 0x08, 0, 0, 0, 8, 0, 0, 1, 0], data[:512], behaviour=0x06),
          scsi_command([0x8a, 0] + list(be(10, 8)) + list(be(1, 4)) + [0, 0], data[:512]),
          scsi_command([0x88, 0] + list(be(10, 8)) + list(be(1, 4)) + [0, 0], bytes(512)),
          scsi_command([0x08, 0, 0, 3, 1, 0], bytes(512)),
          scsi_command([0x0a, 0, 0, 3, 1, 0], data[:512]),
          scsi_command([0xa8, 0] + list(be(2, 4)) + list(be(1, 4)) + [0, 0], bytes(512)),
          scsi_command([0x35] + [0] * 9),
          scsi_command([0x91] + [0] * 15, behaviour=0x04)]
    write_seed("scsi", "read-write", geometry + b"".join(io))

    errors = [scsi_command([0x2a, 0, 0, 0, 0, 4, 0, 0, 1, 0], data[:512], behaviour=0x08),
              scsi_command([0x2a, 0, 0, 0, 0, 4, 0, 0, 1, 0], data[:512], behaviour=0x30),
              scsi_command([0x28, 0, 0, 0, 0, 4, 0, 0, 1, 0], bytes(512), behaviour=0x54),
              scsi_command([0x35] + [0] * 9, behaviour=0x10),
              scsi_command([0x28, 0, 0, 0, 1, 0, 0, 0, 1, 0], bytes(512))]
    write_seed("scsi", "errors", bytes([0x03, 64, 16, 0x02]) + b"".join(errors))

    caching_page = bytes([0x08, 18, 0x04]) + bytes(17)
    mode = [scsi_command([0x1a, 0, 0x3f, 0, 255, 0], bytes(255)),
            scsi_command([0x5a, 0, 0x08, 0, 0, 0, 0, 0, 255, 0], bytes(255)),
            scsi_command([0x5a, 0, 0x0a, 0, 0, 0, 0, 0, 255, 0], bytes(255)),
            scsi_command([0x15, 0x10, 0, 0, 4 + len(caching_page), 0],
                         bytes(4) + caching_page),
            scsi_command([0x55, 0x10, 0, 0, 0, 0, 0, 0, 8 + len(caching_page), 0],
                         bytes(8) + caching_page),
            scsi_command([0x1a, 0, 0x08, 0, 255, 0], bytes(255))]
    write_seed("scsi", "mode", geometry + b"".join(mode))

    unit = [scsi_command([0x00] * 6),
            scsi_command([0x1b, 0, 0, 0, 0, 0]),
            scsi_command([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], bytes(512)),
            scsi_command([0x1b, 0, 0, 0, 1, 0]),
            scsi_command([0x03, 0, 0, 0, 252, 0], bytes(252)),
            scsi_command([0xa0, 0, 0, 0, 0, 0] + list(be(16, 4)) + [0, 0], bytes(16)),
            scsi_command([0xa3, 0x0c, 0, 0, 0, 0] + list(be(4096, 4)) + [0, 0], bytes(4096))]
    write_seed("scsi", "unit", bytes([0x01, 64, 16, 0x01]) + b"".join(unit))

    unmap_list = struct.pack(">HH4x", 22, 16) + struct.pack(">QI4x", 4, 8)
    thin = [scsi_command([0x42, 0, 0, 0, 0, 0, 0, 0, len(unmap_list), 0], unmap_list),
            scsi_command([0x93, 0x08] + list(be(0, 8)) + list(be(8, 4)) + [0, 0], bytes(512)),
            scsi_command([0x41, 0, 0, 0, 0, 8, 0, 0, 8, 0], data[:512]),
            scsi_command([0x89, 0] + list(be(1, 8)) + [0, 0, 0, 1, 0, 0], bytes(1024),
                         behaviour=0x04),
            scsi_command([0x2f, 0, 0, 0, 0, 1, 0, 0, 1, 0])]
    write_seed("scsi", "thin-compare", bytes([0x03, 64, 16, 0x02]) + b"".join(thin))

    # EXTENDED COPY (LID1): one identification CSCD descriptor, one block-to-block segment.
    cscd = (bytes([0xe4, 0x00, 0, 0, 0x01, 0x03, 0, 16]) + bytes([0x60]) + bytes(15) +
            bytes([0, 0, 0x02, 0]))
    segment = bytes([0x02, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, 2]) + be(0, 8) + be(16, 8)
    parameters = (bytes([1, 0]) + be(len(cscd), 2) + bytes(4) + be(len(segment), 4) +
                  bytes(4) + cscd + segment)
    copy = [scsi_command([0x83, 0] + [0] * 8 + list(be(len(parameters), 4)) + [0, 0],
                         parameters),
            scsi_command([0x84, 0x03] + [0] * 8 + list(be(64, 4)) + [0, 0], bytes(64)),
            scsi_command([0x04, 0, 0, 0, 0, 0]),
            scsi_command([0x1d, 0x04, 0, 0, 0, 0])]
    write_seed("scsi", "extended-copy", geometry + b"".join(copy))

    write_seed("scsi", "variable-length", bytes([0x08, 8, 0, 0]) +
               scsi_command([0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0, 0x0b] + [0] * 22, bytes(512)))


# ---------------------------------------------------------------- config

def config_seeds():
    for name, text in [("alloc", "alloc/"),
                       ("alloc-with-config", "alloc/size=1G"),
                       ("file", "file//var/lib/tcmu/disk0.img"),
                       ("file-relative", "file/disk0.img"),
                       ("file-directory", "file//tmp/"),
                       ("options", "file/;timeout=30;dev_max_sectors=64;/tmp/disk.img"),
                       ("options-only", "alloc/;timeout=30;"),
                       ("broken-option", "file/;timeout;/tmp/disk.img"),
                       ("no-subtype", "/tmp/disk.img"),
                       ("control-characters", "file//tmp/a\nb\x01"),
                       ("unknown-handler", "rbd/pool/image;osd_op_timeout=30"),
                       ("echoed", "file//tmp/disk.img\n"),
                       ("echoed-options", "alloc/;t=;s=\n")]:
        write_seed("config", name, text.encode())


def main():
    targets = sys.argv[1:] or ["ring", "netlink", "scsi", "config"]
    for target in targets:
        globals()[target + "_seeds"]()


if __name__ == "__main__":
    main()
