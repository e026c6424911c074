// A move-only callable with inline storage: tape records keep their backward closures here
// without a heap allocation when the captures are small (most ops capture nothing or a scalar).
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include <xgrad/tensor/pool.hpp>

namespace xg::detail {

template <class Sig>
class SmallFn;

template <class R, class... A>
class SmallFn<R(A...)> {
 public:
  static constexpr std::size_t kInline = 64;

  SmallFn() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, SmallFn>>>
  SmallFn(F&& f) {  // NOLINT: implicit like std::function
    emplace(std::forward<F>(f));
  }
  SmallFn(SmallFn&& o) noexcept { take(o); }
  SmallFn& operator=(SmallFn&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  SmallFn(const SmallFn&) = delete;
  SmallFn& operator=(const SmallFn&) = delete;
  ~SmallFn() { reset(); }

  template <class F>
  void emplace(F&& f) {
    using Fn = std::decay_t<F>;
    reset();
    if constexpr (sizeof(Fn) <= kInline && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      ::new (static_cast<void*>(buf_)) Fn(std::forward<F>(f));
      call_ = [](void* p, A... a) -> R { return (*static_cast<Fn*>(p))(std::forward<A>(a)...); };
      manage_ = [](Op op, void* self, void* other) {
        if (op == Op::Destroy) {
          static_cast<Fn*>(self)->~Fn();
        } else {  // move from other into self, then destroy other
          ::new (self) Fn(std::move(*static_cast<Fn*>(other)));
          static_cast<Fn*>(other)->~Fn();
        }
      };
      heap_ = false;
    } else {
      void* box = pool_allocate(sizeof(Fn));  // large captures live in the pool
      try {
        *reinterpret_cast<Fn**>(buf_) = ::new (box) Fn(std::forward<F>(f));
      } catch (...) {
        pool_deallocate(box, sizeof(Fn));
        throw;
      }
      call_ = [](void* p, A... a) -> R {
        return (**static_cast<Fn**>(p))(std::forward<A>(a)...);
      };
      manage_ = [](Op op, void* self, void* other) {
        if (op == Op::Destroy) {
          Fn* fn = *static_cast<Fn**>(self);
          fn->~Fn();
          pool_deallocate(fn, sizeof(Fn));
        } else {
          *static_cast<Fn**>(self) = *static_cast<Fn**>(other);
        }
      };
      heap_ = true;
    }
  }

  void reset() {
    if (manage_) manage_(Op::Destroy, buf_, nullptr);
    manage_ = nullptr;
    call_ = nullptr;
  }
  explicit operator bool() const { return call_ != nullptr; }
  R operator()(A... a) { return call_(buf_, std::forward<A>(a)...); }

 private:
  enum class Op { Destroy, Move };
  void take(SmallFn& o) {
    if (!o.manage_) return;
    o.manage_(Op::Move, buf_, o.buf_);
    call_ = o.call_;
    manage_ = o.manage_;
    heap_ = o.heap_;
    o.call_ = nullptr;
    o.manage_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char buf_[kInline];
  R (*call_)(void*, A...) = nullptr;
  void (*manage_)(Op, void*, void*) = nullptr;
  bool heap_ = false;
};

}  // namespace xg::detail
