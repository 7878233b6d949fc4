/* header.c - the 64-byte .ellm header (docs/FORMAT.md, "Header"). */
#include <string.h>

#include "common/common.h"
#include "container/container.h"
#include "container/format.h"

/* Byte offsets of the header fields. */
enum {
    H_VERSION = 8,
    H_HEADER_SIZE = 12,
    H_FILE_SIZE = 16,
    H_META_SIZE = 24,
    H_DIR_SIZE = 28,
    H_N_TENSORS = 32,
    H_N_BLOBS = 36,
    H_META_CHECKSUM = 40,
    H_DIR_CHECKSUM = 48,
    H_CHECKSUM = 56, /* XXH3-64 of bytes 0..55 */
};

void ellm_header_encode(const ellm_header *h, uint8_t *out) {
    memset(out, 0, ELLM_HEADER_SIZE);
    memcpy(out, ELLM_MAGIC, 8);
    ellm_put_le32(out + H_VERSION, h->version);
    ellm_put_le32(out + H_HEADER_SIZE, h->header_size);
    ellm_put_le64(out + H_FILE_SIZE, h->file_size);
    ellm_put_le32(out + H_META_SIZE, h->meta_size);
    ellm_put_le32(out + H_DIR_SIZE, h->dir_size);
    ellm_put_le32(out + H_N_TENSORS, h->n_tensors);
    ellm_put_le32(out + H_N_BLOBS, h->n_blobs);
    ellm_put_le64(out + H_META_CHECKSUM, h->meta_checksum);
    ellm_put_le64(out + H_DIR_CHECKSUM, h->dir_checksum);
    ellm_put_le64(out + H_CHECKSUM, ellm_checksum(out, H_CHECKSUM));
}

ellm_status ellm_header_decode(const uint8_t *in, uint64_t file_size, const char *path, ellm_header *h,
                               ellm_error *err) {
    /* Magic and version come first (a version-1 file has its header checksum
     * elsewhere, and deserves a better message than a checksum mismatch). */
    if (file_size < ELLM_HEADER_SIZE)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: file is truncated: %llu bytes, too short for the %d-byte .ellm header",
                         path, (unsigned long long)file_size, ELLM_HEADER_SIZE);
    if (memcmp(in, ELLM_MAGIC, 8) != 0)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: not an .ellm file (bad magic at byte 0)", path);
    h->version = ellm_le32(in + H_VERSION);
    if (h->version == 1)
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "%s: .ellm format version 1 is no longer read (this build reads version %d): "
                         "re-compress the model with this entrollm",
                         path, ELLM_FORMAT_VERSION);
    if (h->version != ELLM_FORMAT_VERSION)
        return ellm_fail(err, ELLM_E_UNSUPPORTED,
                         "%s: .ellm format version %u (this build reads version %d): "
                         "re-compress the model with this entrollm",
                         path, h->version, ELLM_FORMAT_VERSION);
    uint64_t want = ellm_le64(in + H_CHECKSUM), got = ellm_checksum(in, H_CHECKSUM);
    if (ELLM_CHECKSUM_DIFFERS(want, got))
        return ellm_fail(err, ELLM_E_CHECKSUM,
                         "%s: header checksum mismatch (bytes 0..%d: stored %016llx, computed %016llx)", path,
                         H_CHECKSUM - 1, (unsigned long long)want, (unsigned long long)got);
    h->header_size = ellm_le32(in + H_HEADER_SIZE);
    h->file_size = ellm_le64(in + H_FILE_SIZE);
    h->meta_size = ellm_le32(in + H_META_SIZE);
    h->dir_size = ellm_le32(in + H_DIR_SIZE);
    h->n_tensors = ellm_le32(in + H_N_TENSORS);
    h->n_blobs = ellm_le32(in + H_N_BLOBS);
    h->meta_checksum = ellm_le64(in + H_META_CHECKSUM);
    h->dir_checksum = ellm_le64(in + H_DIR_CHECKSUM);
    if (h->header_size != ELLM_HEADER_SIZE)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: header size %u at byte %d, expected %d", path, h->header_size,
                         H_HEADER_SIZE, ELLM_HEADER_SIZE);
    if (h->file_size != file_size)
        return ellm_fail(err, ELLM_E_FORMAT, "%s: file is truncated or extended: header says %llu bytes, file has %llu",
                         path, (unsigned long long)h->file_size, (unsigned long long)file_size);
    /* Both sizes are u32: the sum cannot overflow. */
    if ((uint64_t)ELLM_HEADER_SIZE + h->meta_size + h->dir_size > file_size)
        return ellm_fail(err, ELLM_E_FORMAT,
                         "%s: header (%d bytes), metadata (%u bytes) and directory (%u bytes) do not fit in the "
                         "file's %llu bytes",
                         path, ELLM_HEADER_SIZE, h->meta_size, h->dir_size, (unsigned long long)file_size);
    return ELLM_OK;
}
