/* cp_opus under the sanitizers: encode/decode at every rate and frame size, PLC, FEC, argument
 * checks, and garbage packets of every length (errors allowed, crashes and leaks not). */
#include "callpipe/cp_opus.h"
#include "check.h"
#include <math.h>
#include <opus.h>
#include <string.h>

int main(void) {
    const int rates[] = {8000, 12000, 16000, 24000, 48000};
    const int tenths_ms[] = {25, 50, 100, 200, 400, 600};
    unsigned seed = 7;
    for (int r = 0; r < 5; r++) {
        for (int ch = 1; ch <= 2; ch++) {
            cp_opus_enc *enc = NULL;
            cp_opus_dec *dec = NULL;
            CHECK(cp_opus_enc_new(&enc, rates[r], ch, OPUS_APPLICATION_VOIP) == 0, "enc %d/%d", rates[r], ch);
            CHECK(cp_opus_dec_new(&dec, rates[r], ch) == 0, "dec %d/%d", rates[r], ch);
            if (!enc || !dec) continue;
            CHECK(cp_opus_enc_set_inband_fec(enc, 1) == 0 && cp_opus_enc_set_packet_loss_perc(enc, 20) == 0, "fec");
            int16_t pcm[5760 * 2], out[5760 * 2];
            unsigned char pkt[CP_OPUS_MAX_PACKET_BYTES];
            int32_t last_len = 0;
            for (int t = 0; t < 6; t++) {
                int n = rates[r] * tenths_ms[t] / 10000;
                for (int i = 0; i < n * ch; i++) pcm[i] = (int16_t)(8000 * sin(i * 0.05));
                int32_t len = cp_opus_enc_encode(enc, pcm, n * ch, n, pkt, sizeof pkt);
                CHECK(len > 0, "encode %d Hz %d ch %d samples: %d", rates[r], ch, n, (int)len);
                if (len <= 0) continue;
                last_len = len;
                CHECK(cp_opus_dec_decode(dec, pkt, len, out, 5760, 0) == n, "decode length");
                CHECK(cp_opus_dec_decode(dec, NULL, 0, out, n, 0) == n, "PLC length");
                CHECK(cp_opus_dec_decode(dec, pkt, len, out, n, 1) == n, "FEC length");
            }
            /* wrong frame size and too-short buffers are refused, not overrun */
            CHECK(cp_opus_enc_encode(enc, pcm, 100 * ch, 100, pkt, sizeof pkt) < 0, "bad frame size");
            CHECK(cp_opus_enc_encode(enc, pcm, 10, 960, pkt, sizeof pkt) < 0, "pcm shorter than frame");
            for (int len = 0; len < 300; len++) {
                unsigned char *g = random_bytes((size_t)len, &seed);
                cp_opus_dec_decode(dec, g, len, out, 5760, 0);
                free(g);
            }
            /* the last packet holds 60 ms: with a 10-sample buffer the call decodes nothing and
             * returns the size it needs (more than the buffer) */
            CHECK(last_len > 0 && cp_opus_dec_decode(dec, pkt, last_len, out, 10, 0) == rates[r] * 60 / 1000,
                  "tiny output buffer");
            cp_opus_enc_free(enc);
            cp_opus_dec_free(dec);
        }
    }
    cp_opus_enc *bad = NULL;
    CHECK(cp_opus_enc_new(&bad, 44100, 1, OPUS_APPLICATION_VOIP) != 0 && bad == NULL, "44.1 kHz refused");
    CHECK(cp_opus_enc_new(&bad, 48000, 3, OPUS_APPLICATION_VOIP) != 0 && bad == NULL, "3 channels refused");
    return check_done("test_cp_opus");
}
