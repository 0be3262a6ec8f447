// Random mutations of gate_check request lines through ParseGateLine
// (native/ipc/gate_line.h), built with ASan and UBSan by
// test/gate-line-stress.test.ts: any read past a line or other undefined
// behaviour aborts. It also checks the offsets it reports lie inside the
// line. (The answers themselves are held to the general path's by
// test/gate-line.test.ts.) Prints "<iterations> <taken>".
#include "ipc/gate_line.h"
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>
using namespace gk;
int main(int argc, char** argv) {
  long iters = argc > 1 ? atol(argv[1]) : 1000000;
  std::vector<std::u16string> seeds = {
    u"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"gate_check\",\"params\":{\"car\":{\"action_type\":\"file_read\",\"agent_id\":\"agent-1\",\"resource\":\"/srv/a\",\"args\":{\"mode\":\"r\",\"n\":[1,2,{\"b\":true,\"a\":null}]}}}}",
    u"{ \"params\" : { \"car\" : { \"z\":\"\\u00e9\\ud83d\\ude00\", \"agent_id\":\"a\", \"action_type\":\"x\", \"k\\\"q\":[[[[[]]]]] } }, \"id\":\"r-1\", \"method\":\"gate_check\", \"jsonrpc\":\"2.0\" }",
    // Numbers of every kind the reader writes (jcs_number.cc), and the optional params.
    u"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"gate_check\",\"params\":{\"session_id\":\"s-1\",\"car\":{\"action_type\":\"pay\",\"agent_id\":\"a-2\",\"args\":{\"amount\":12.5,\"t\":-1.25e-7,\"big\":1234567890123456,\"z\":0.0,\"e\":1E+2}},\"nonce\":\"n-1\"}}",
  };
  const char16_t alphabet[] = u"{}[]\":,\\ \t\r\nuabcdef0123456789-.eE/\x01\xd800\xdc00\xe9";
  std::mt19937_64 rng(argc > 2 ? strtoull(argv[2], nullptr, 10) : 12345);
  long taken = 0;
  GateLine out;
  std::u16string line;
  for (long it = 0; it < iters; it++) {
    line = seeds[rng() % seeds.size()];
    int edits = 1 + rng() % 6;
    for (int e = 0; e < edits && !line.empty(); e++) {
      size_t at = rng() % (line.size() + 1);
      char16_t c = alphabet[rng() % (sizeof(alphabet) / sizeof(char16_t) - 1)];
      switch (rng() % 5) {
        case 0: if (at < line.size()) line[at] = c; break;
        case 1: line.insert(line.begin() + at, c); break;
        case 2: if (at < line.size()) line.erase(at, 1 + rng() % 8); break;
        case 3: line.resize(at); break;
        case 4: { size_t from = rng() % line.size(); size_t n = 1 + rng() % 20; line.insert(at, line.substr(from, n)); break; }
      }
    }
    // Copy into an exactly sized heap buffer so ASan sees any read past the end.
    std::vector<char16_t> exact(line.begin(), line.end());
    char16_t* p = exact.empty() ? nullptr : exact.data();
    if (ParseGateLine(p, exact.size(), &out)) {
      taken++;
      auto outside = [&](uint32_t start, uint32_t end) { return start != kGateLineAbsent && (start > end || end > exact.size()); };
      if (out.id_end > exact.size() || out.agent_end > exact.size() || out.action_end > exact.size() || out.agent_start >= out.agent_end || out.action_start >= out.action_end || out.id_start >= out.id_end ||
          outside(out.nonce_start, out.nonce_end) || outside(out.permit_start, out.permit_end) || outside(out.session_start, out.session_end) || outside(out.car_start, out.car_end)) {
        fprintf(stderr, "bad offsets at iteration %ld\n", it);
        return 1;
      }
    }
  }
  printf("%ld %ld\n", iters, taken);
  return 0;
}
