#include <cstdlib>
#include <cstring>

#include <xgrad/tensor/pool.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define XG_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XG_POOL_ASAN 1
#endif
#endif
#ifdef XG_POOL_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace xg {

namespace {

constexpr std::size_t kAlign = 64;
constexpr std::size_t kSmall = 1024;        // multiples of 64 up to here: classes 0-15
constexpr unsigned kSubClasses = 16;        // then 16 per power of two
constexpr unsigned kMaxLog = 40;            // blocks above 1 TiB are not cached
constexpr std::size_t kClasses = 16 + (kMaxLog - 10) * kSubClasses;
constexpr std::size_t kNoClass = kClasses;

struct Class {
  std::size_t index, bytes;
};

// The class serving `bytes`, and its block size.
Class class_of(std::size_t bytes) {
  if (bytes <= kSmall) {
    const std::size_t k = bytes == 0 ? 0 : (bytes - 1) / kAlign;
    return {k, (k + 1) * kAlign};
  }
  const unsigned p = 63u - static_cast<unsigned>(__builtin_clzll(bytes - 1));  // 2^p < bytes <= 2^(p+1)
  if (p >= kMaxLog) return {kNoClass, bytes};
  const std::size_t base = std::size_t{1} << p, step = base / kSubClasses;
  const std::size_t k = (bytes - base + step - 1) / step - 1;  // 0 .. 15
  return {16 + (p - 10) * kSubClasses + k, base + (k + 1) * step};
}

struct Settings {
  bool on = true;
  std::size_t limit = std::size_t{1} << 30;
};
const Settings& settings() {
  static const Settings s = [] {
    Settings r;
    if (const char* e = std::getenv("XGRAD_POOL"); e && std::strcmp(e, "0") == 0) r.on = false;
    if (const char* e = std::getenv("XGRAD_POOL_LIMIT_MB"))
      r.limit = static_cast<std::size_t>(std::strtoull(e, nullptr, 10)) << 20;
    return r;
  }();
  return s;
}

// A thread's free lists: plain data, so it stays usable while the thread's other thread_local
// objects (a tape holding arrays) are destroyed after the reaper below has run.
struct Lists {
  void* head[kClasses];
  std::size_t cached;
  std::uint64_t system_allocs, reuses;
  bool dead;  // the reaper has run: serve and free directly
};
thread_local Lists lists{};

void* system_block(std::size_t bytes) {
  void* p = std::aligned_alloc(kAlign, bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

void poison(void* p, std::size_t n) {
#ifdef XG_POOL_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}
void unpoison(void* p, std::size_t n) {
#ifdef XG_POOL_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p, (void)n;
#endif
}

// The block size of class c (the inverse of class_of).
std::size_t class_bytes(std::size_t c) {
  if (c < 16) return (c + 1) * kAlign;
  const std::size_t base = std::size_t{1} << (10 + (c - 16) / kSubClasses);
  return base + ((c - 16) % kSubClasses + 1) * (base / kSubClasses);
}

void trim(Lists& l) {
  for (std::size_t c = 0; c < kClasses; ++c) {
    while (void* p = l.head[c]) {
      unpoison(p, class_bytes(c));
      l.head[c] = *static_cast<void**>(p);
      std::free(p);
    }
  }
  l.cached = 0;
}

struct Reaper {
  bool armed = false;
  ~Reaper() {
    trim(lists);
    lists.dead = true;
  }
};
thread_local Reaper reaper;

}  // namespace

namespace detail {

void* pool_allocate(std::size_t bytes) {
  const Class c = class_of(bytes);
  Lists& l = lists;
  if (c.index == kNoClass || l.dead || !settings().on) return system_block(c.bytes);
  if (void* p = l.head[c.index]) {
    unpoison(p, c.bytes);
    l.head[c.index] = *static_cast<void**>(p);
    l.cached -= c.bytes;
    ++l.reuses;
    return p;
  }
  reaper.armed = true;  // first block of this thread: its cache is freed when the thread ends
  ++l.system_allocs;
  return system_block(c.bytes);
}

void pool_deallocate(void* p, std::size_t bytes) noexcept {
  if (!p) return;
  const Class c = class_of(bytes);
  Lists& l = lists;
  if (c.index == kNoClass || l.dead || !settings().on || l.cached + c.bytes > settings().limit) {
    std::free(p);
    return;
  }
  reaper.armed = true;  // a thread that only frees still hands its cache back when it ends
  *static_cast<void**>(p) = l.head[c.index];
  l.head[c.index] = p;
  l.cached += c.bytes;
  poison(p, c.bytes);
}

}  // namespace detail

PoolStats pool_stats() { return {lists.system_allocs, lists.reuses, lists.cached}; }

void pool_trim() { trim(lists); }

std::size_t pool_limit() { return settings().limit; }

}  // namespace xg
