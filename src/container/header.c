/* header.c - the 128-byte .ellm header (docs/FORMAT.md, "Header"). */
#include <string.h>

#include "common/common.h"
#include "container/container.h"
#include "container/format.h"

void ellm_header_encode(const ellm_header *h, uint8_t *out) {
    memset(out, 0, ELLM_HEADER_SIZE);
    memcpy(out, ELLM_MAGIC, 8);
    ellm_put_le32(out + 8, h->version);
    ellm_put_le32(out + 12, h->header_size);
    ellm_put_le64(out + 16, h->file_size);
    ellm_put_le64(out + 24, h->meta_offset);
    ellm_put_le64(out + 32, h->meta_size);
    ellm_put_le64(out + 40, h->dir_offset);
    ellm_put_le64(out + 48, h->dir_size);
    ellm_put_le64(out + 56, h->n_tensors);
    ellm_put_le64(out + 64, h->n_blobs);
    ellm_put_le64(out + 72, h->meta_checksum);
    ellm_put_le64(out + 80, h->dir_checksum);
    ellm_put_le64(out + 120, ellm_checksum(out, 120));
}

static bool section_ok(uint64_t offset, uint64_t size, uint64_t file_size) {
    uint64_t end;
    return ellm_add_u64(offset, size, &end) && end <= file_size && offset >= ELLM_HEADER_SIZE;
}

ellm_status ellm_header_decode(const uint8_t *in, uint64_t file_size, const char *path, ellm_header *h,
                               ellm_error *err) {
    if (file_size < ELLM_HEADER_SIZE)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: file is %llu bytes, too short for the %d-byte .ellm header",
                         path, (unsigned long long)file_size, ELLM_HEADER_SIZE);
    if (memcmp(in, ELLM_MAGIC, 8) != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: not an .ellm file (bad magic at byte 0)", path);
    uint64_t want = ellm_le64(in + 120), got = ellm_checksum(in, 120);
    if (ELLM_CHECKSUM_DIFFERS(want, got))
        return ellm_fail(err, ELLM_E_CHECKSUM,
                         "%s: header checksum mismatch (bytes 0..119: stored %016llx, computed %016llx)",
                         path, (unsigned long long)want, (unsigned long long)got);
    h->version = ellm_le32(in + 8);
    h->header_size = ellm_le32(in + 12);
    h->file_size = ellm_le64(in + 16);
    h->meta_offset = ellm_le64(in + 24);
    h->meta_size = ellm_le64(in + 32);
    h->dir_offset = ellm_le64(in + 40);
    h->dir_size = ellm_le64(in + 48);
    h->n_tensors = ellm_le64(in + 56);
    h->n_blobs = ellm_le64(in + 64);
    h->meta_checksum = ellm_le64(in + 72);
    h->dir_checksum = ellm_le64(in + 80);
    if (h->version != ELLM_FORMAT_VERSION)
        return ellm_fail(err, ELLM_E_UNSUPPORTED, "%s: .ellm format version %u (this build reads version %d)",
                         path, h->version, ELLM_FORMAT_VERSION);
    if (h->header_size != ELLM_HEADER_SIZE)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: header size %u, expected %d", path, h->header_size,
                         ELLM_HEADER_SIZE);
    if (h->file_size != file_size)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: file is truncated or extended: header says %llu bytes, file has %llu",
                         path, (unsigned long long)h->file_size, (unsigned long long)file_size);
    if (!section_ok(h->meta_offset, h->meta_size, file_size))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: metadata section (offset %llu, %llu bytes) lies outside the file",
                         path, (unsigned long long)h->meta_offset, (unsigned long long)h->meta_size);
    if (!section_ok(h->dir_offset, h->dir_size, file_size))
        return ellm_fail(err, ELLM_E_FORMAT, "%s: directory (offset %llu, %llu bytes) lies outside the file", path,
                         (unsigned long long)h->dir_offset, (unsigned long long)h->dir_size);
    return ELLM_OK;
}
