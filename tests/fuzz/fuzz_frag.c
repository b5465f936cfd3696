/* libFuzzer: arbitrary bytes as fragments into the reassembler.
 * Input layout: repeated [len (1 byte) | link (1) | fragment bytes]. A frame
 * reported complete must hash to the key its fragments claimed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "frag.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fe_reasm r;
    uint64_t now = 0;
    size_t off = 0;

    fe_reasm_init(&r, 5000);
    while (off + 2 <= size) {
        size_t len = data[off];
        uint32_t link = data[off + 1] & 3u;
        const uint8_t *out;
        size_t out_len;
        off += 2;
        if (len > size - off)
            len = size - off;
        int rc = fe_reasm_feed(&r, link, data + off, len, now, &out, &out_len);
        if (rc == 1 && (out_len > FE_FRAME_MAX || fe_frag_key(out, out_len) != fe_get_be32(data + off + 3)))
            abort();
        if (fe_reasm_in_use(&r) > FE_REASM_SLOTS)
            abort();
        off += len;
        now += 100;
        fe_reasm_expire(&r, now);
    }
    return 0;
}
