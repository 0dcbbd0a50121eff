#include "vidfeat/model/checkpoint.h"

#include <array>
#include <cstring>
#include <fstream>

#include "vidfeat/common/error.h"

namespace vidfeat {

const char* checkpointFormatName(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::TorchZip:
      return "torch zip (.pyth/.pth)";
    case CheckpointFormat::TorchLegacy:
      return "torch legacy (.pyth/.pth, before PyTorch 1.6)";
    case CheckpointFormat::Caffe2Pickle:
      return "Caffe2 pickle (.pkl)";
  }
  return "?";
}

CheckpointFormat detectCheckpointFormat(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open the checkpoint");
  unsigned char head[16] = {};
  in.read(reinterpret_cast<char*>(head), sizeof head);
  const auto got = size_t(in.gcount());
  if (got >= 4 && std::memcmp(head, "PK\x03\x04", 4) == 0) return CheckpointFormat::TorchZip;
  // Legacy torch.save opens with pickle(0x1950a86a20f9469cfc6c): PROTO 2, LONG1 of 10 bytes.
  static const unsigned char kLegacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                          0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (got >= sizeof kLegacy && std::memcmp(head, kLegacy, sizeof kLegacy) == 0)
    return CheckpointFormat::TorchLegacy;
  if (got >= 2 && head[0] == 0x80 && head[1] == 0x02) return CheckpointFormat::Caffe2Pickle;
  if (got == 0) throw InputError(path, "the checkpoint is empty");
  throw InputError(path,
                   "not a checkpoint vidfeat reads: neither a torch.save zip (PK\\x03\\x04), a "
                   "legacy torch.save "
                   "file, nor a protocol-2 pickle (\\x80\\x02) as Caffe2 wrote");
}

namespace {

// FIPS 180-4 SHA-256, streaming.
class Sha256 {
 public:
  void update(const unsigned char* p, size_t n) {
    total_ += n;
    while (n > 0) {
      const size_t k = std::min(n, size_t(64) - fill_);
      std::memcpy(block_ + fill_, p, k);
      fill_ += k;
      p += k;
      n -= k;
      if (fill_ == 64) {
        compress(block_);
        fill_ = 0;
      }
    }
  }

  std::string hex() {
    const uint64_t bits = total_ * 8;
    const unsigned char one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (uint32_t w : h_) {
      for (int s = 28; s >= 0; s -= 4) out += kHex[(w >> s) & 0xF];
    }
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress(const unsigned char* b) {
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
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t(b[4 * i]) << 24) | (uint32_t(b[4 * i + 1]) << 16) |
             (uint32_t(b[4 * i + 2]) << 8) | b[4 * i + 3];
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], bb = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6],
             h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 =
          h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 =
          (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = bb;
      bb = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += bb;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char block_[64];
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

}  // namespace

std::string sha256Hex(const void* data, size_t size) {
  Sha256 s;
  s.update(static_cast<const unsigned char*>(data), size);
  return s.hex();
}

std::string sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open the checkpoint");
  Sha256 s;
  std::array<char, 1 << 16> buf;
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    s.update(reinterpret_cast<const unsigned char*>(buf.data()), size_t(in.gcount()));
  }
  if (in.bad()) throw InputError(path, "read error while hashing");
  return s.hex();
}

}  // namespace vidfeat
