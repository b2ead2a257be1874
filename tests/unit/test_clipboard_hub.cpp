// core/clipboard: the hub between the VM's clipboard and the viewers: a viewer's copy claims the
// VM's clipboard and answers its paste; the VM's copy is fetched once and handed to every viewer;
// a late answer never overrides a newer copy; past the limit nothing changes.
#include <catch2/catch.hpp>

#include <functional>
#include <vector>

#include "core/clipboard.hpp"

using namespace vdistream;

namespace {

struct FakeVm : core::VmClipboard {
  int grabs = 0, releases = 0;
  std::vector<std::function<void(core::Result<std::string>)>> requests;
  void grab() override { ++grabs; }
  void release() override { ++releases; }
  void request(std::function<void(core::Result<std::string>)> done) override { requests.push_back(std::move(done)); }
};

struct FakeViewer : core::ClipboardClient {
  std::vector<std::string> texts;
  int cleared = 0;
  void vm_copied(const core::ClipboardTextPtr& text) override { texts.push_back(text->text); }
  void vm_cleared() override { ++cleared; }
};

}  // namespace

TEST_CASE("a viewer's copy claims the VM's clipboard and is what the VM pastes") {
  core::ClipboardHub hub("test", 100);
  FakeVm vm;
  CHECK(!hub.client_copied("early"));  // no VM yet
  hub.attach_vm(&vm);
  CHECK(!hub.vm_paste());
  REQUIRE(hub.client_copied("hello"));
  CHECK(vm.grabs == 1);
  auto pasted = hub.vm_paste();
  REQUIRE(pasted);
  CHECK(*pasted == "hello");
  auto s = hub.stats();
  CHECK(s.to_vm == 1);
  CHECK(s.to_vm_bytes == 5);
  CHECK(s.vm_requests == 1);
  CHECK(s.owner == "viewer");
  hub.detach_vm(&vm);
}

TEST_CASE("the VM's copy is fetched and handed to every viewer - and to one that joins later") {
  core::ClipboardHub hub("test", 100);
  FakeVm vm;
  FakeViewer a, b;
  hub.attach_vm(&vm);
  hub.add_client(&a);
  hub.vm_grabbed();
  REQUIRE(vm.requests.size() == 1);
  vm.requests[0](std::string("from the guest"));
  CHECK(a.texts == std::vector<std::string>{"from the guest"});
  hub.add_client(&b);
  CHECK(b.texts == std::vector<std::string>{"from the guest"});
  CHECK(!hub.vm_paste());  // the VM owns it: nothing of ours to paste
  hub.vm_released();
  CHECK(a.cleared == 1);
  CHECK(b.cleared == 1);
  hub.remove_client(&a);
  hub.remove_client(&b);
  hub.detach_vm(&vm);
}

TEST_CASE("a late answer from the VM does not override a newer copy") {
  core::ClipboardHub hub("test", 100);
  FakeVm vm;
  FakeViewer a;
  hub.attach_vm(&vm);
  hub.add_client(&a);
  hub.vm_grabbed();
  hub.vm_grabbed();
  REQUIRE(vm.requests.size() == 2);
  vm.requests[1](std::string("second"));
  vm.requests[0](std::string("first"));  // answered after the second
  CHECK(a.texts == std::vector<std::string>{"second"});
  hub.vm_grabbed();
  REQUIRE(hub.client_copied("the viewer's, after"));
  vm.requests[2](std::string("the VM's, late"));
  CHECK(a.texts == std::vector<std::string>{"second"});
  CHECK(*hub.vm_paste() == "the viewer's, after");
  hub.remove_client(&a);
  hub.detach_vm(&vm);
}

TEST_CASE("past the limit a copy is refused either way and the last one stays") {
  core::ClipboardHub hub("test", 8);
  FakeVm vm;
  FakeViewer a;
  hub.attach_vm(&vm);
  hub.add_client(&a);
  REQUIRE(hub.client_copied("12345678"));  // at the limit: taken
  auto refused = hub.client_copied("123456789");
  REQUIRE(!refused);
  CHECK_THAT(refused.error(), Catch::Contains("9 bytes") && Catch::Contains("limit of 8"));
  CHECK(vm.grabs == 1);
  CHECK(*hub.vm_paste() == "12345678");
  hub.vm_grabbed();
  vm.requests[0](std::string("far too long"));
  CHECK(a.texts.empty());
  auto s = hub.stats();
  CHECK(s.refused == 2);
  CHECK_THAT(s.last_refusal, Catch::Contains("the VM copied 12 bytes"));
  hub.remove_client(&a);
  hub.detach_vm(&vm);
}
