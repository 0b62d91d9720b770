// Native liquibook peer of `tradex bench matching`: replays one order stream file
// (../shared/bench/ORDER_STREAM.md) through liquibook's own C++ engine
// (liquibook::book::OrderBook, header-only, the headers the PyPI wheel ships under
// include/liquibook/) and prints the same six checksums as `tradex bench replay`.
//
//   liquibook_replay STREAM     -> one JSON line: the six checksums, ops, seconds, cpu_seconds
//
// Outside the timed loop (as for every engine of the bench): reading the file and building
// one order object per new order; a cancel is resolved to its order object beforehand (as
// the Python binding's peer does). Inside: one book.add(order, conditions) or
// book.cancel(order) per record, with liquibook's own callback dispatch; the book's
// on_fill override appends each trade (maker id, taker id, maker price, qty) to a
// preallocated log, as TradeX's replay copies its trade records out.
//
// Ops it replays: GTC, IOC, FOK (all-or-none + immediate-or-cancel), market (price 0,
// immediate-or-cancel) and cancel. Post-only and amend have no liquibook equivalent with the
// stream's semantics: a stream with them is refused (exit 2), as the binding peer refuses it;
// an unreadable or truncated file exits 3.
// Cancels of ids that never were new orders are skipped (nothing any engine could do).

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <unordered_map>
#include <vector>

#include "liquibook/book/order_book.h"

namespace lb = liquibook::book;

namespace {

// --- the order type: the interface OrderBook<OrderPtr> uses, nothing else ---------------
struct Order {
  int64_t id;
  bool buy;
  lb::Price limit;
  lb::Quantity qty;
  bool is_buy() const { return buy; }
  lb::Price price() const { return limit; }
  lb::Price stop_price() const { return 0; }
  lb::Quantity order_qty() const { return qty; }
  bool all_or_none() const { return false; }
  bool immediate_or_cancel() const { return false; }
  bool is_limit() const { return limit > 0; }
};

struct Trade {
  int64_t maker, taker, price, qty;
};

class Book : public lb::OrderBook<Order*> {
 public:
  std::vector<Trade> trades;
  void on_fill(Order* const& order, Order* const& matched, lb::Quantity qty, lb::Price price,
               bool, bool) override {
    trades.push_back(Trade{matched->id, order->id, static_cast<int64_t>(price),
                           static_cast<int64_t>(qty)});
  }
};

// --- SHA-256 (FIPS 180-4), for trade_hash ------------------------------------------------
struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char block[64];
  size_t used = 0;
  uint64_t bits = 0;

  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress(const unsigned char* p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) |
             (uint32_t(p[4 * i + 2]) << 8) | uint32_t(p[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }

  void update(const unsigned char* p, size_t n) {
    bits += uint64_t(n) * 8;
    while (n > 0) {
      size_t take = std::min(n, size_t(64) - used);
      std::memcpy(block + used, p, take);
      used += take; p += take; n -= take;
      if (used == 64) { compress(block); used = 0; }
    }
  }

  std::string hex() {
    uint64_t total = bits;
    unsigned char pad = 0x80;
    update(&pad, 1);
    unsigned char zero = 0;
    while (used != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = (unsigned char)(total >> (56 - 8 * i));
    update(len, 8);
    char out[65];
    for (int i = 0; i < 8; ++i) std::snprintf(out + 8 * i, 9, "%08x", h[i]);
    return std::string(out, 64);
  }
};

double seconds_of(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

std::string int128_text(__int128 v) {
  if (v == 0) return "0";
  bool negative = v < 0;
  unsigned __int128 u = negative ? -(unsigned __int128)v : (unsigned __int128)v;
  std::string s;
  while (u > 0) { s.insert(s.begin(), char('0' + int(u % 10))); u /= 10; }
  return negative ? "-" + s : s;
}

enum Op : int64_t { GTC = 1, IOC = 2, FOK = 3, POST_ONLY = 4, MARKET = 5, CANCEL = 6, AMEND = 7 };

struct Step {
  Order* order;
  lb::OrderConditions conditions;
  bool cancel;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STREAM\n", argv[0]);
    return 3;
  }
  FILE* f = std::fopen(argv[1], "rb");
  if (!f) {
    std::fprintf(stderr, "liquibook_replay: cannot open %s\n", argv[1]);
    return 3;
  }
  std::vector<unsigned char> bytes;
  unsigned char chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  std::fclose(f);
  if (bytes.size() % 40 != 0) {
    std::fprintf(stderr, "liquibook_replay: %s is not a whole number of 40-byte records\n", argv[1]);
    return 3;
  }
  std::vector<int64_t> raw(bytes.size() / 8);
  if (!bytes.empty()) std::memcpy(raw.data(), bytes.data(), bytes.size());  // little-endian host
  const size_t n = raw.size() / 5;

  // Orders and steps, built outside the timed loop.
  std::vector<Order> orders;
  orders.reserve(n);
  std::unordered_map<int64_t, size_t> by_id;
  by_id.reserve(n);
  std::vector<Step> steps;
  steps.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t* r = &raw[5 * i];
    int64_t op = r[0], side = r[1], id = r[2], price = r[3], qty = r[4];
    if (op == CANCEL) {
      auto it = by_id.find(id);
      if (it != by_id.end()) steps.push_back(Step{&orders[it->second], 0, true});
      continue;
    }
    lb::OrderConditions conditions;
    switch (op) {
      case GTC: conditions = lb::oc_no_conditions; break;
      case IOC: conditions = lb::oc_immediate_or_cancel; break;
      case FOK: conditions = lb::oc_all_or_none | lb::oc_immediate_or_cancel; break;
      case MARKET: conditions = lb::oc_immediate_or_cancel; break;
      default:
        std::fprintf(stderr,
                     "liquibook_replay: record %zu: op %lld (post-only or amend) has no liquibook "
                     "equivalent with the stream's semantics\n", i, (long long)op);
        return 2;
    }
    by_id[id] = orders.size();
    orders.push_back(Order{id, side == 0, lb::Price(op == MARKET ? 0 : price), lb::Quantity(qty)});
    steps.push_back(Step{&orders.back(), conditions, false});  // reserved: never moves
  }

  Book book;
  book.trades.reserve(n + 1);
  double c0 = seconds_of(CLOCK_PROCESS_CPUTIME_ID);
  double t0 = seconds_of(CLOCK_MONOTONIC);
  for (const Step& s : steps) {
    if (s.cancel) book.cancel(s.order);
    else book.add(s.order, s.conditions);
  }
  double seconds = seconds_of(CLOCK_MONOTONIC) - t0;
  double cpu_seconds = seconds_of(CLOCK_PROCESS_CPUTIME_ID) - c0;

  // Checksums (../shared/bench/ORDER_STREAM.md).
  int64_t traded_qty = 0;
  __int128 notional = 0;
  Sha256 sha;
  for (const Trade& t : book.trades) {
    traded_qty += t.qty;
    notional += (__int128)t.price * t.qty;
    int64_t fields[4] = {t.maker, t.taker, t.price, t.qty};  // little-endian host
    sha.update(reinterpret_cast<const unsigned char*>(fields), sizeof fields);
  }
  int64_t resting = 0, resting_qty = 0;
  for (const auto& level : book.bids()) { ++resting; resting_qty += int64_t(level.second.open_qty()); }
  for (const auto& level : book.asks()) { ++resting; resting_qty += int64_t(level.second.open_qty()); }
  std::printf(
      "{\"trades\": %zu, \"traded_qty\": %lld, \"notional\": %s, \"resting\": %lld, "
      "\"resting_qty\": %lld, \"trade_hash\": \"%s\", \"ops\": %zu, \"seconds\": %.9f, "
      "\"cpu_seconds\": %.9f}\n",
      book.trades.size(), (long long)traded_qty, int128_text(notional).c_str(), (long long)resting,
      (long long)resting_qty, sha.hex().c_str(), n, seconds, cpu_seconds);
  return 0;
}
