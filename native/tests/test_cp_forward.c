/* Tests of native/src/cp_forward.c: routing decisions, sequence rewriting, NACK mapping,
 * HELLO registration, limits, and the batched I/O on real loopback sockets. */
#define _GNU_SOURCE
#include "callpipe/cp_forward.h"
#include "check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint8_t TOKENS[4][16];

/* An RTP packet: frame marking (id 2) when fm >= 0, audio level (id 1) when level >= 0. */
static size_t rtp(uint8_t *b, uint16_t seq, uint32_t ts, uint32_t ssrc, int fm, int level,
                  size_t payload) {
    size_t n = 12;
    b[0] = 0x80;
    b[1] = 96;
    b[2] = (uint8_t)(seq >> 8);
    b[3] = (uint8_t)seq;
    b[4] = (uint8_t)(ts >> 24); b[5] = (uint8_t)(ts >> 16); b[6] = (uint8_t)(ts >> 8); b[7] = (uint8_t)ts;
    b[8] = (uint8_t)(ssrc >> 24); b[9] = (uint8_t)(ssrc >> 16); b[10] = (uint8_t)(ssrc >> 8); b[11] = (uint8_t)ssrc;
    if (fm >= 0 || level >= 0) {
        b[0] |= 0x10;
        b[12] = 0xBE; b[13] = 0xDE; b[14] = 0; b[15] = 1;
        uint8_t *e = b + 16;
        memset(e, 0, 4);
        int i = 0;
        if (fm >= 0) { e[i++] = 0x20; e[i++] = (uint8_t)fm; }
        if (level >= 0) { e[i++] = 0x10; e[i++] = (uint8_t)level; }
        n = 20;
    }
    for (size_t i = 0; i < payload; i++) b[n + i] = (uint8_t)(0xA5 ^ i ^ seq);
    return n + payload;
}

static cp_fwd_addr addr(uint16_t port) {
    cp_fwd_addr a;
    int rc = cp_fwd_addr_make("127.0.0.1", port, &a);
    CHECK(rc == CP_FWD_OK, "addr_make rc=%d", rc);
    return a;
}

static void hello(cp_fwd *t, int who, uint16_t port) {
    uint8_t h[20] = {'C', 'P', 'H', '1'};
    memcpy(h + 4, TOKENS[who], 16);
    cp_fwd_addr a = addr(port);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, h, sizeof h, &a, 1000);
    CHECK(cp_fwd_out_count(t) == 1, "hello answered (%u)", cp_fwd_out_count(t));
    uint8_t reply[16];
    size_t len = 0;
    cp_fwd_addr to;
    cp_fwd_out_get(t, 0, reply, sizeof reply, &len, &to);
    CHECK(len == 6 && memcmp(reply, "CPH1OK", 6) == 0, "reply is CPH1OK");
    CHECK(to.len == a.len && memcmp(to.bytes, a.bytes, a.len) == 0, "reply to the sender");
    cp_fwd_out_clear(t);
}

static uint16_t out_port(const cp_fwd *t, uint32_t i) {
    cp_fwd_addr to;
    size_t len;
    char host[64];
    uint16_t port = 0;
    cp_fwd_out_get(t, i, NULL, 0, &len, &to);
    cp_fwd_addr_format(&to, host, sizeof host, &port);
    return port;
}

static uint16_t out_seq(const cp_fwd *t, uint32_t i, uint8_t *buf, size_t *len) {
    cp_fwd_out_get(t, i, buf, 2048, len, NULL);
    return (uint16_t)((buf[2] << 8) | buf[3]);
}

static void test_addresses(void) {
    cp_fwd_addr a;
    char host[64];
    uint16_t port;
    CHECK(cp_fwd_addr_make("127.0.0.1", 5004, &a) == 0, "v4");
    CHECK(cp_fwd_addr_format(&a, host, sizeof host, &port) == 0 && strcmp(host, "127.0.0.1") == 0 &&
              port == 5004, "v4 round trip %s:%u", host, port);
    CHECK(cp_fwd_addr_make("::1", 9, &a) == 0 && a.len == sizeof(struct sockaddr_in6), "v6");
    CHECK(cp_fwd_addr_format(&a, host, sizeof host, &port) == 0 && strcmp(host, "::1") == 0 &&
              port == 9, "v6 round trip");
    CHECK(cp_fwd_addr_make("not an address", 1, &a) == CP_FWD_ERR_ADDRESS, "bad address");
}

static cp_fwd *room_of_three(int with_fourth) {
    cp_fwd_config cfg;
    cp_fwd_config_default(&cfg);
    cfg.max_participants = 8;
    cfg.max_sources = 32;
    cfg.cache_packets = 64;
    int st;
    cp_fwd *t = cp_fwd_new(&cfg, &st);
    CHECK(t && st == 0, "new");
    for (int i = 0; i < 4; i++) memset(TOKENS[i], 0x10 + i, 16);
    int32_t slot;
    for (int i = 0; i < 3; i++) {
        CHECK(cp_fwd_add_participant(t, 1, TOKENS[i], &slot) == 0 && slot == i, "join %d", i);
        CHECK(cp_fwd_add_source(t, slot, 100 + (uint32_t)i, CP_FWD_AUDIO, 48000, 0) == 0, "audio");
        CHECK(cp_fwd_add_source(t, slot, 200 + (uint32_t)i, CP_FWD_VIDEO, 90000, 0) == 0, "video");
    }
    if (with_fourth) {
        CHECK(cp_fwd_add_participant(t, 2, TOKENS[3], &slot) == 0 && slot == 3, "other room");
        CHECK(cp_fwd_add_source(t, slot, 103, CP_FWD_AUDIO, 48000, 0) == 0, "audio 4");
    }
    CHECK(cp_fwd_add_participant(t, 1, TOKENS[0], &slot) == CP_FWD_ERR_EXISTS, "token reuse");
    CHECK(cp_fwd_add_source(t, 0, 100, CP_FWD_AUDIO, 48000, 0) == CP_FWD_ERR_EXISTS, "ssrc reuse");
    CHECK(cp_fwd_add_source(t, 7, 999, CP_FWD_AUDIO, 48000, 0) == CP_FWD_ERR_NOT_FOUND, "no owner");
    return t;
}

static void test_forwarding_and_rejections(void) {
    cp_fwd *t = room_of_three(1);
    uint8_t pkt[1500], buf[2048];
    size_t n = rtp(pkt, 10, 1000, 100, -1, 20, 100), len;
    cp_fwd_addr a0 = addr(40000), other = addr(40099);
    cp_fwd_counters c;

    cp_fwd_route(t, pkt, n, &a0, 1000);  /* before HELLO */
    cp_fwd_get_counters(t, &c);
    CHECK(c.unregistered == 1 && cp_fwd_out_count(t) == 0, "before hello: dropped");

    hello(t, 0, 40000);
    hello(t, 1, 40001);
    cp_fwd_route(t, pkt, n, &a0, 2000);
    CHECK(cp_fwd_out_count(t) == 1 && out_port(t, 0) == 40001, "to the one registered peer");
    hello(t, 2, 40002);
    hello(t, 3, 40003);
    cp_fwd_route(t, pkt, n, &a0, 3000);
    CHECK(cp_fwd_out_count(t) == 2, "fan-out to the two room-mates, not the other room (%u)",
          cp_fwd_out_count(t));
    for (uint32_t i = 0; i < cp_fwd_out_count(t); i++) {
        out_seq(t, i, buf, &len);
        CHECK(len == n && memcmp(buf, pkt, n) == 0, "byte-identical copy %u", i);
        uint16_t p = out_port(t, i);
        CHECK(p == 40001 || p == 40002, "destination %u", p);
    }
    cp_fwd_out_clear(t);

    cp_fwd_route(t, pkt, n, &other, 4000);  /* spoofed source address */
    uint8_t junk[40] = {0x12, 0x34};
    cp_fwd_route(t, junk, sizeof junk, &a0, 4000);  /* not version 2 */
    cp_fwd_route(t, pkt, 11, &a0, 4000);            /* truncated */
    size_t m = rtp(pkt, 11, 1000, 555, -1, -1, 10);
    cp_fwd_route(t, pkt, m, &a0, 4000);             /* unknown SSRC */
    uint8_t badhello[20] = {'C', 'P', 'H', '1'};
    cp_fwd_route(t, badhello, sizeof badhello, &other, 4000);
    pkt[0] |= 0x10;                                  /* X bit past the end */
    cp_fwd_route(t, pkt, 14, &a0, 4000);
    cp_fwd_get_counters(t, &c);
    CHECK(cp_fwd_out_count(t) == 0, "nothing forwarded from bad input");
    CHECK(c.wrong_address == 1 && c.malformed == 3 && c.unknown_ssrc == 1 && c.hello_bad == 1,
          "counted: wrong %llu malformed %llu unknown %llu hello_bad %llu",
          (unsigned long long)c.wrong_address, (unsigned long long)c.malformed,
          (unsigned long long)c.unknown_ssrc, (unsigned long long)c.hello_bad);

    /* audio level accumulates */
    cp_fwd_source_stats ss;
    CHECK(cp_fwd_source_stats_get(t, 100, &ss) == 0 && ss.level_count == 2 &&
              ss.level_sum == 2 * (127 - 20), "audio level sums");

    /* RTCP from a registered participant becomes an event, with its bytes */
    uint8_t rr[8] = {0x80, 201, 0, 1, 0, 0, 0, 101};
    cp_fwd_addr a1 = addr(40001);
    cp_fwd_events_clear(t);
    cp_fwd_route(t, rr, sizeof rr, &a1, 5000);
    cp_fwd_event ev;
    const uint8_t *data;
    CHECK(cp_fwd_event_count(t) == 1 && cp_fwd_event_get(t, 0, &ev, &data) == 0 &&
              ev.type == CP_FWD_EV_RTCP && ev.participant == 1 && ev.len == 8 &&
              memcmp(data, rr, 8) == 0, "rtcp event");
    cp_fwd_events_clear(t);
    cp_fwd_route(t, rr, sizeof rr, &a0, 5000);  /* sender SSRC 101 is not a0's */
    CHECK(cp_fwd_event_count(t) == 0, "rtcp from the wrong address dropped");

    /* leave: no more forwarding to or from */
    CHECK(cp_fwd_remove_participant(t, 1) == 0, "remove");
    n = rtp(pkt, 12, 1000, 100, -1, -1, 50);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 6000);
    CHECK(cp_fwd_out_count(t) == 1 && out_port(t, 0) == 40002, "only to the one left");
    cp_fwd_out_clear(t);
    n = rtp(pkt, 1, 1000, 101, -1, -1, 50);
    cp_fwd_route(t, pkt, n, &a1, 6000);
    CHECK(cp_fwd_out_count(t) == 0, "a gone participant's SSRC is unknown");
    int32_t owner;
    CHECK(cp_fwd_source_owner(t, 201, &owner) == CP_FWD_ERR_NOT_FOUND, "sources released");
    CHECK(cp_fwd_add_source(t, 0, 201, CP_FWD_VIDEO, 90000, 0) == 0, "ssrc reusable");
    cp_fwd_free(t);
}

/* fm byte: S E I D B TID */
static int fm_byte(int start, int key, int tid) {
    return (start ? 0x80 : 0) | 0x40 | (key ? 0x20 : 0) | tid;
}

static void test_layers_and_nack(void) {
    cp_fwd *t = room_of_three(0);
    hello(t, 0, 40000);
    hello(t, 1, 40001);
    hello(t, 2, 40002);
    CHECK(cp_fwd_set_max_tid(t, 2, 200, 0) == 0, "receiver 2 wants TL0");
    CHECK(cp_fwd_set_max_tid(t, 2, 200, 9) == CP_FWD_ERR_ARG, "tid out of range");
    cp_fwd_addr a0 = addr(40000);
    uint8_t pkt[1500], buf[2048];
    size_t len;
    /* frames of 2 packets; pattern 0 2 1 2; first a keyframe */
    uint16_t seq = 65530;  /* across the wrap */
    uint16_t got2[64];
    int n2 = 0, n1 = 0;
    for (int f = 0; f < 12; f++) {
        int tid = (int[]){0, 2, 1, 2}[f % 4];
        for (int k = 0; k < 2; k++) {
            size_t n = rtp(pkt, seq, 3000u * (uint32_t)f, 200, fm_byte(k == 0, f == 0, tid), -1,
                           300);
            cp_fwd_out_clear(t);
            cp_fwd_route(t, pkt, n, &a0, 10000 + (uint64_t)f);
            for (uint32_t i = 0; i < cp_fwd_out_count(t); i++) {
                uint16_t s = out_seq(t, i, buf, &len);
                if (out_port(t, i) == 40002)
                    got2[n2++] = s;
                else
                    n1++;
                CHECK(len == n && memcmp(buf + 4, pkt + 4, n - 4) == 0, "only seq differs");
            }
            seq++;
        }
    }
    CHECK(n1 == 24, "receiver 1 gets every packet (%d)", n1);
    CHECK(n2 == 6, "receiver 2 gets the TL0 packets (%d)", n2);
    for (int i = 1; i < n2; i++)
        CHECK((uint16_t)(got2[i] - got2[i - 1]) == 1, "contiguous %u -> %u", got2[i - 1], got2[i]);
    CHECK(got2[0] == 65530, "the first forwarded packet keeps its number");
    uint8_t mt, ct, en, wt;
    uint64_t fw, dr;
    CHECK(cp_fwd_link_state(t, 2, 200, &mt, &ct, &en, &wt, &fw, &dr) == 0 && mt == 0 && ct == 0 &&
              fw == 6 && dr == 18, "link state fw=%llu dr=%llu", (unsigned long long)fw,
          (unsigned long long)dr);

    /* NACK: out seq got2[3] (3rd TL0 frame, first packet) maps back to input seq */
    uint16_t in;
    CHECK(cp_fwd_upstream_seq(t, 2, 200, got2[2], &in) == 1 && in == (uint16_t)(65530 + 8),
          "upstream of %u is %u", got2[2], in);
    CHECK(cp_fwd_resend(t, 2, 200, got2[2], buf, sizeof buf, &len) == 1, "resend from cache");
    CHECK(((buf[2] << 8) | buf[3]) == got2[2] && len == 320, "resent with the receiver's seq");
    CHECK(cp_fwd_resend(t, 1, 200, (uint16_t)(65530 + 5), buf, sizeof buf, &len) == 1 &&
              ((buf[2] << 8) | buf[3]) == (uint16_t)(65530 + 5), "identity mapping for receiver 1");
    CHECK(cp_fwd_resend(t, 2, 200, (uint16_t)(got2[5] + 1), buf, sizeof buf, &len) == 0,
          "a number not given yet is not resent");
    CHECK(cp_fwd_resend(t, 1, 100, 1, buf, sizeof buf, &len) == 0, "audio is not cached");

    /* going up needs a keyframe (no sync frames here): still TL0 */
    cp_fwd_set_max_tid(t, 2, 0, CP_FWD_ALL_LAYERS);
    size_t n = rtp(pkt, seq++, 99000, 200, fm_byte(1, 0, 1), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20000);
    CHECK(cp_fwd_out_count(t) == 1, "TL1 still dropped for receiver 2 until a keyframe");
    n = rtp(pkt, seq++, 102000, 200, fm_byte(1, 1, 0), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20001);
    CHECK(cp_fwd_out_count(t) == 2, "keyframe to both");
    n = rtp(pkt, seq++, 105000, 200, fm_byte(1, 0, 2), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20002);
    CHECK(cp_fwd_out_count(t) == 2, "TL2 to both after the keyframe");
    uint16_t a = out_seq(t, 0, buf, &len), b = out_seq(t, 1, buf, &len);
    CHECK(a != b, "the two receivers have different numbering");

    /* last-N: disable -> dropped; enable -> waits for a keyframe and asks for one */
    cp_fwd_set_enabled(t, 1, 200, 0);
    n = rtp(pkt, seq++, 108000, 200, fm_byte(1, 0, 0), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20003);
    CHECK(cp_fwd_out_count(t) == 1 && out_port(t, 0) == 40002, "disabled for receiver 1");
    cp_fwd_set_enabled(t, 1, 200, 1);
    cp_fwd_events_clear(t);
    n = rtp(pkt, seq++, 111000, 200, fm_byte(1, 0, 0), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20004);
    cp_fwd_event ev;
    CHECK(cp_fwd_out_count(t) == 1 && cp_fwd_event_count(t) == 1 &&
              cp_fwd_event_get(t, 0, &ev, NULL) == 0 && ev.type == CP_FWD_EV_KEYFRAME_WAIT &&
              ev.participant == 1 && ev.ssrc == 200, "waits for a keyframe, one event");
    n = rtp(pkt, seq++, 114000, 200, fm_byte(1, 1, 0), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20005);
    CHECK(cp_fwd_out_count(t) == 2, "keyframe resumes receiver 1");

    /* late packet of a dropped layer: a hole that a NACK fills with padding */
    cp_fwd_set_max_tid(t, 2, 200, 0);
    uint16_t base = seq;
    n = rtp(pkt, (uint16_t)(base + 1), 117000, 200, fm_byte(1, 0, 0), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20006);  /* base missing for now */
    uint16_t after_gap = 0;
    for (uint32_t i = 0; i < cp_fwd_out_count(t); i++)
        if (out_port(t, i) == 40002) after_gap = out_seq(t, i, buf, &len);
    n = rtp(pkt, base, 116000, 200, fm_byte(1, 0, 2), -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a0, 20007);  /* arrives late, TL2 */
    CHECK(cp_fwd_out_count(t) == 1 && out_port(t, 0) == 40001, "late TL2 only to receiver 1");
    CHECK(cp_fwd_resend(t, 2, 200, (uint16_t)(after_gap - 1), buf, sizeof buf, &len) == 1 &&
              len == 16 && (buf[0] & 0x20) && buf[15] == 4, "hole filled with padding");
    cp_fwd_free(t);
}

static void test_flood_and_fuzz(void) {
    cp_fwd_config cfg;
    cp_fwd_config_default(&cfg);
    cfg.max_participants = 4;
    cfg.max_sources = 8;
    cfg.rate_packets = 100;
    cfg.burst_packets = 10;
    int st;
    cp_fwd *t = cp_fwd_new(&cfg, &st);
    int32_t s0, s1;
    memset(TOKENS[0], 1, 16);
    memset(TOKENS[1], 2, 16);
    cp_fwd_add_participant(t, 7, TOKENS[0], &s0);
    cp_fwd_add_participant(t, 7, TOKENS[1], &s1);
    cp_fwd_add_source(t, s0, 1, CP_FWD_AUDIO, 48000, 0);
    cp_fwd_add_source(t, s1, 2, CP_FWD_AUDIO, 48000, 0);
    hello(t, 0, 41000);
    hello(t, 1, 41001);
    cp_fwd_addr a0 = addr(41000), a1 = addr(41001);
    uint8_t pkt[200];
    uint32_t fwd0 = 0;
    for (int i = 0; i < 200; i++) {  /* 200 packets in 2 ms */
        size_t n = rtp(pkt, (uint16_t)i, 0, 1, -1, -1, 100);
        cp_fwd_out_clear(t);
        cp_fwd_route(t, pkt, n, &a0, 100000 + (uint64_t)i * 10);
        fwd0 += cp_fwd_out_count(t);
    }
    size_t n = rtp(pkt, 5, 0, 2, -1, -1, 100);
    cp_fwd_out_clear(t);
    cp_fwd_route(t, pkt, n, &a1, 102000);
    CHECK(cp_fwd_out_count(t) == 1, "the other participant is not limited");
    cp_fwd_counters c;
    cp_fwd_get_counters(t, &c);
    CHECK(fwd0 >= 10 && fwd0 <= 12 && c.flood_dropped == 200 - fwd0,
          "flood limited to the burst: %u forwarded, %llu dropped", fwd0,
          (unsigned long long)c.flood_dropped);
    /* fuzz: random datagrams never crash, never forward */
    unsigned seed = 7;
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(i % 300);
        unsigned char *r = random_bytes(len, &seed);
        if (len > 1 && (i & 1)) r[0] = (unsigned char)(0x80 | (r[0] & 0x3f));
        if (len > 12 && (i & 2)) { r[8] = 0; r[9] = 0; r[10] = 0; r[11] = 1; r[4] = 0; r[5] = 0; r[6] = 0; r[7] = 1; }
        cp_fwd_out_clear(t);
        cp_fwd_route(t, r, len, (i & 4) ? &a0 : &a1, 200000 + (uint64_t)i * 1000000);
        free(r);
    }
    CHECK(cp_fwd_remove_participant(t, 5) == CP_FWD_ERR_NOT_FOUND, "bad slot");
    cp_fwd_free(t);
    CHECK(cp_fwd_new(NULL, &st) == NULL && st == CP_FWD_ERR_ARG, "bad config");
}

static int udp_socket(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int rcvbuf = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t l = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &l);
    *port = ntohs(sa.sin_port);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static ssize_t recv_wait(int fd, uint8_t *buf, size_t cap) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) return -1;
    return recv(fd, buf, cap, 0);
}

static void test_sockets(void) {
    cp_fwd_config cfg;
    cp_fwd_config_default(&cfg);
    cfg.max_participants = 4;
    cfg.max_sources = 8;
    cfg.batch = 8;
    int st;
    cp_fwd *t = cp_fwd_new(&cfg, &st);
    uint16_t ps, p0, p1;
    int sfu = udp_socket(&ps), c0 = udp_socket(&p0), c1 = udp_socket(&p1);
    cp_fwd_addr to = addr(ps);
    memset(TOKENS[0], 3, 16);
    memset(TOKENS[1], 4, 16);
    int32_t s0, s1;
    cp_fwd_add_participant(t, 1, TOKENS[0], &s0);
    cp_fwd_add_participant(t, 1, TOKENS[1], &s1);
    cp_fwd_add_source(t, s0, 11, CP_FWD_VIDEO, 90000, 0);
    cp_fwd_add_source(t, s1, 12, CP_FWD_VIDEO, 90000, 0);
    uint8_t h[20] = {'C', 'P', 'H', '1'}, buf[2048];
    for (int i = 0; i < 2; i++) {
        memcpy(h + 4, TOKENS[i], 16);
        sendto(i ? c1 : c0, h, sizeof h, 0, (struct sockaddr *)to.bytes, to.len);
    }
    cp_fwd_pump_result r;
    struct pollfd p = {sfu, POLLIN, 0};
    poll(&p, 1, 1000);
    usleep(2000);
    CHECK(cp_fwd_pump(t, sfu, 4, &r) == 0 && r.datagrams == 2 && r.sent == 2 && r.drained,
          "pump: %u in %u out", r.datagrams, r.sent);
    CHECK(cp_fwd_event_count(t) == 2, "two registrations");
    cp_fwd_events_clear(t);
    CHECK(recv_wait(c0, buf, sizeof buf) == 6 && recv_wait(c1, buf, sizeof buf) == 6, "OK replies");
    uint8_t pkt[1300];
    int total = 0;
    for (int i = 0; i < 20; i++) {
        size_t n = rtp(pkt, (uint16_t)i, 0, 11, -1, -1, 1200);
        sendto(c0, pkt, n, 0, (struct sockaddr *)to.bytes, to.len);
    }
    for (int tries = 0; tries < 50 && total < 20; tries++) {
        poll(&p, 1, 100);
        cp_fwd_pump(t, sfu, 16, &r);
        total += (int)r.sent;
    }
    CHECK(total == 20, "20 forwarded (%d)", total);
    int got = 0;
    while (recv_wait(c1, buf, sizeof buf) == 1212) got++;
    CHECK(got == 20, "20 received (%d)", got);
    /* the bench tools */
    cp_fwd_blast_result br;
    cp_fwd_addr a1 = addr(p1);
    CHECK(cp_fwd_blast(c0, &a1, 1, pkt, 1212, 0, 1.0, 50, 16, &br) == 0 && br.sent == 50,
          "blast sent %llu", (unsigned long long)br.sent);
    cp_fwd_sink_result sr;
    int fds[1] = {c1};
    CHECK(cp_fwd_sink(fds, 1, 1.0, 0.1, &sr) == 0 && sr.packets == 50 && sr.bytes == 60600,
          "sink got %llu", (unsigned long long)sr.packets);
    close(sfu);
    close(c0);
    close(c1);
    cp_fwd_free(t);
}

static uint32_t rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void test_load_generator(void) {
    uint16_t pr, pa, pb;
    int r = udp_socket(&pr), a = udp_socket(&pa), b = udp_socket(&pb);
    cp_fwd_addr to = addr(pr);
    /* the schedule: audio (level 127) at 0 ms, a video packet at 1 ms, audio at 2 ms */
    uint8_t bytes[3000];
    size_t n0 = rtp(bytes, 100, 1000, 0, -1, 0x7f, 80);
    size_t n1 = rtp(bytes + n0, 7, 3000, 0, 0xA0, -1, 1000);
    size_t n2 = rtp(bytes + n0 + n1, 101, 1960, 0, -1, 0x7f, 80);
    CHECK(bytes[17] == 0x7f, "level byte at 17");
    cp_fwd_load_packet pk[3] = {
        {0.000, 0, (uint32_t)n0, 17, 0},
        {0.001, (uint32_t)n0, (uint32_t)n1, 0, 1},
        {0.002, (uint32_t)(n0 + n1), (uint32_t)n2, 17, 0},
    };
    cp_fwd_load_schedule sch = {bytes, n0 + n1 + n2, pk, 3, 0.01, {480, 900}};
    cp_fwd_load_sender snd[2] = {
        {a, {101, 102}, {65534, 10}, 0.0, 0x85, {0, 0}, 0},
        {b, {201, 202}, {0, 0}, 0.005, -1, {0, 0}, 0},
    };
    cp_fwd_load_send_result res;
    /* bad arguments */
    CHECK(cp_fwd_load_send(snd, 0, &to, &sch, 0.1, &res) == CP_FWD_ERR_ARG, "no senders");
    CHECK(cp_fwd_load_send(snd, 2, &to, &sch, 0, &res) == CP_FWD_ERR_ARG, "no time");
    pk[2].at_s = 0.0005;
    CHECK(cp_fwd_load_send(snd, 2, &to, &sch, 0.1, &res) == CP_FWD_ERR_ARG, "unsorted");
    pk[2].at_s = 0.002;
    pk[0].level_offset = (uint32_t)n0;
    CHECK(cp_fwd_load_send(snd, 2, &to, &sch, 0.1, &res) == CP_FWD_ERR_ARG, "level offset");
    pk[0].level_offset = 17;
    pk[1].len = (uint32_t)(sizeof bytes);
    CHECK(cp_fwd_load_send(snd, 2, &to, &sch, 0.1, &res) == CP_FWD_ERR_ARG, "beyond bytes");
    pk[1].len = (uint32_t)n1;
    snd[1].level = 256;
    CHECK(cp_fwd_load_send(snd, 2, &to, &sch, 0.1, &res) == CP_FWD_ERR_ARG, "level");
    snd[1].level = -1;
    /* 97.5 ms: 10 loops each (the last of b's starts at 95 ms) */
    CHECK(cp_fwd_load_send(snd, 2, &to, &sch, 0.0975, &res) == CP_FWD_OK, "load_send");
    CHECK(res.sent == 60 && res.errors == 0, "sent %llu", (unsigned long long)res.sent);
    CHECK(snd[0].sent[0] == 20 && snd[0].sent[1] == 10 && snd[1].sent[0] == 20 &&
          snd[1].sent[1] == 10, "per stream");
    CHECK(snd[0].seq[0] == 18 && snd[0].seq[1] == 20 && snd[1].seq[0] == 20, "next seq");
    CHECK(res.seconds > 0.08 && res.cpu_s >= 0 && res.late_max_s >= 0, "timing %g", res.seconds);
    uint8_t buf[2048];
    int count[2][2] = {{0, 0}, {0, 0}};
    for (int k = 0; k < 60; k++) {
        ssize_t n = recv_wait(r, buf, sizeof buf);
        CHECK(n > 12, "packet %d", k);
        if (n <= 12) break;
        uint32_t ssrc = rd32(buf + 8), ts = rd32(buf + 4);
        uint16_t seq = (uint16_t)((buf[2] << 8) | buf[3]);
        int who = ssrc / 100 - 1, stream = (int)(ssrc % 100) - 1;
        CHECK(who >= 0 && who < 2 && stream >= 0 && stream < 2, "ssrc %u", ssrc);
        if (who < 0 || who > 1 || stream < 0 || stream > 1) break;
        int i = count[who][stream]++;
        if (stream == 1) {
            CHECK((size_t)n == n1 && ts == 3000u + 900u * (uint32_t)i, "video ts %u", ts);
            CHECK(seq == (uint16_t)((who ? 0 : 10) + i), "video seq %u", seq);
            CHECK(memcmp(buf + 12, bytes + n0 + 12, n1 - 12) == 0, "video bytes as built");
        } else {
            uint32_t want = (i % 2 ? 1960u : 1000u) + 480u * (uint32_t)(i / 2);
            CHECK((size_t)n == n0 && ts == want, "audio ts %u (want %u)", ts, want);
            CHECK(seq == (uint16_t)((who ? 0 : 65534) + i), "audio seq %u", seq);
            CHECK(buf[17] == (who ? 0x7f : 0x85), "level %#x", buf[17]);
            const uint8_t *tpl = i % 2 ? bytes + n0 + n1 : bytes;
            CHECK(memcmp(buf + 18, tpl + 18, n0 - 18) == 0, "audio bytes as built");
        }
    }
    CHECK(count[0][0] == 20 && count[1][1] == 10, "all arrived");
    /* the counting receiver: the same again, plus RTCP, a reply, a stranger, a gap */
    CHECK(cp_fwd_load_send(snd, 2, &to, &sch, 0.0975, &res) == CP_FWD_OK && res.sent == 60,
          "again");
    uint8_t x[1300];
    size_t xn = rtp(x, 0, 0, 555, -1, -1, 10);
    sendto(a, x, xn, 0, (struct sockaddr *)to.bytes, to.len);
    xn = rtp(x, 5, 0, 999, -1, -1, 10);
    sendto(a, x, xn, 0, (struct sockaddr *)to.bytes, to.len);
    xn = rtp(x, 8, 0, 999, -1, -1, 10);
    sendto(a, x, xn, 0, (struct sockaddr *)to.bytes, to.len);
    x[0] = 0x80; x[1] = 201; x[2] = 0; x[3] = 1; memset(x + 4, 0, 4);
    sendto(b, x, 8, 0, (struct sockaddr *)to.bytes, to.len);
    sendto(b, "CPH1OK", 6, 0, (struct sockaddr *)to.bytes, to.len);
    int fds[1] = {r};
    uint32_t ssrcs[5] = {101, 102, 201, 202, 999};
    uint64_t got[5], span[5];
    cp_fwd_load_recv_result rr;
    uint32_t dup[2] = {7, 7};
    CHECK(cp_fwd_load_recv(fds, 1, dup, 2, 1.0, 0.1, got, span, &rr) == CP_FWD_ERR_ARG, "dup");
    CHECK(cp_fwd_load_recv(fds, 0, ssrcs, 5, 1.0, 0.1, got, span, &rr) == CP_FWD_ERR_ARG, "none");
    CHECK(cp_fwd_load_recv(fds, 1, ssrcs, 5, 2.0, 0.1, got, span, &rr) == CP_FWD_OK, "recv");
    CHECK(got[0] == 20 && got[1] == 10 && got[2] == 20 && got[3] == 10 && got[4] == 2,
          "received %llu %llu %llu %llu %llu", (unsigned long long)got[0],
          (unsigned long long)got[1], (unsigned long long)got[2], (unsigned long long)got[3],
          (unsigned long long)got[4]);
    CHECK(span[0] == 20 && span[1] == 10 && span[3] == 10 && span[4] == 4, "spans (gap 5..8)");
    CHECK(rr.rtp == 62 && rr.rtcp == 1 && rr.other == 2, "rtp %llu rtcp %llu other %llu",
          (unsigned long long)rr.rtp, (unsigned long long)rr.rtcp, (unsigned long long)rr.other);
    CHECK(rr.first_s > 0 && rr.last_s >= rr.first_s && rr.cpu_s >= 0, "times");
    close(r);
    close(a);
    close(b);
}

int main(void) {
    test_addresses();
    test_forwarding_and_rejections();
    test_layers_and_nack();
    test_flood_and_fuzz();
    test_sockets();
    test_load_generator();
    return check_done("test_cp_forward");
}
