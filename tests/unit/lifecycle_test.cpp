// The parts of the container lifecycle below the monitor: state files, the true state of a
// container whose monitor is gone, and the run options the monitor acts on.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "hutch/engine.hpp"
#include "hutch/paths.hpp"
#include "engine_fixture.hpp"

using namespace hutch;
namespace fs = std::filesystem;

namespace {

class LifecycleEngineTest : public test::EngineTest {
 protected:
  // A record in containers.json with `state` in its state file.
  void add(const std::string& id, const std::string& name, const ContainerState& state) {
    Store& st = engine_->store();
    auto lock = st.lock(FileLock::Mode::kExclusive);
    make_dirs(st.container_dir(id), 0700);
    auto all = st.container_records();
    ContainerRecord r;
    r.id = id;
    r.name = name;
    all.push_back(r);
    st.save_containers(all);
    st.save_container_state(id, state);
  }
  ContainerRecord listed(const std::string& name) {
    for (const auto& c : engine_->list_containers())
      if (c.name == name) return c;
    ADD_FAILURE() << name << " is not listed";
    return {};
  }
  // The pid of a process that has ended and been reaped.
  static pid_t dead_pid() {
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, nullptr, 0);
    return p;
  }
  // Throws from create_container: its message.
  std::string refused(RunOptions o) {
    o.image = "nosuchimage";
    try {
      engine_->create_container(o);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::kUsage) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "create_container accepted it";
    return "";
  }
};

TEST_F(LifecycleEngineTest, StateFilesRoundTrip) {
  ContainerState s;
  s.status = "running";
  s.exit_code = 3;
  s.pid = 42;
  s.pid_start = 7;
  s.restart_count = 2;
  s.health = HealthState{"healthy", 0, {{"a", "b", 0, "ok"}}};
  add("c1", "one", s);
  Store& st = engine_->store();
  ContainerState back = st.container_state("c1");
  EXPECT_EQ(back.status, "running");
  EXPECT_EQ(back.pid, 42);
  EXPECT_EQ(back.restart_count, 2);
  ASSERT_TRUE(back.health);
  EXPECT_EQ(back.health->status, "healthy");
  ASSERT_EQ(back.health->log.size(), 1u);
  EXPECT_EQ(back.health->log[0].output, "ok");
  ContainerState changed = st.update_container_state("c1", [](ContainerState& x) { x.exit_code = 9; });
  EXPECT_EQ(changed.exit_code, 9);
  EXPECT_EQ(st.container_state("c1").exit_code, 9);
  EXPECT_EQ(st.containers().at(0).state.exit_code, 9) << "containers() reads each state file in";
  EXPECT_EQ(st.find_container_record("one")->state.exit_code, 0) << "a record alone has the default state";
  // No state file yet: created. A corrupt one: exited, saying why.
  EXPECT_EQ(st.container_state("nosuch").status, "created");
  std::ofstream(st.container_dir("c1") / "state.json") << "{not json";
  ContainerState corrupt = st.container_state("c1");
  EXPECT_EQ(corrupt.status, "exited");
  EXPECT_NE(corrupt.error.find("corrupt"), std::string::npos);
}

TEST_F(LifecycleEngineTest, ARunningContainerWhoseMonitorAndProcessAreGoneShowsExited) {
  ContainerState s;
  s.status = "running";
  s.monitor_pid = dead_pid();
  s.monitor_start = 12345;
  s.pid = dead_pid();
  s.pid_start = 12345;
  add("c1", "ghost", s);
  ContainerRecord c = listed("ghost");
  EXPECT_EQ(c.state.status, "exited");
  EXPECT_EQ(c.state.exit_code, 137);
  EXPECT_NE(c.state.error.find("monitor"), std::string::npos) << c.state.error;
}

TEST_F(LifecycleEngineTest, AContainerWhoseMonitorIsGoneButWhoseProcessRunsShowsRunning) {
  ContainerState s;
  s.status = "running";
  s.monitor_pid = dead_pid();
  s.monitor_start = 12345;
  s.pid = getpid();  // stands in for the container's process: alive, with its true start time
  s.pid_start = process_start_time(getpid());
  add("c1", "orphan", s);
  ContainerRecord c = listed("orphan");
  EXPECT_EQ(c.state.status, "running");
  EXPECT_NE(c.state.error.find("rm -f"), std::string::npos) << c.state.error;
  // The same pid with another start time is another process: not ours.
  engine_->store().update_container_state("c1", [](ContainerState& x) { ++x.pid_start; });
  EXPECT_EQ(listed("orphan").state.status, "exited");
}

TEST_F(LifecycleEngineTest, AZombieIsNotAlive) {
  pid_t p = fork();
  if (p == 0) _exit(0);
  // Not reaped yet: its /proc entry stays, as a zombie.
  for (int i = 0; i < 100 && fs::exists("/proc/" + std::to_string(p)); ++i) {
    std::string stat = read_file("/proc/" + std::to_string(p) + "/stat");
    if (stat.find(") Z") != std::string::npos) break;
    ::usleep(10000);
  }
  EXPECT_EQ(process_start_time(p), 0u);
  waitpid(p, nullptr, 0);
  EXPECT_NE(process_start_time(getpid()), 0u);
}

TEST_F(LifecycleEngineTest, AContainerBeingCreatedIsNotListed) {
  ContainerState s;
  s.status = "creating";
  s.monitor_pid = getpid();
  s.monitor_start = process_start_time(getpid());
  add("c1", "halfmade", s);
  add("c2", "whole", ContainerState{});
  auto all = engine_->list_containers();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "whole");
}

TEST_F(LifecycleEngineTest, BadLifecycleOptionsAreRefusedNamingTheFlag) {
  RunOptions o;
  o.restart = "sometimes";
  EXPECT_NE(refused(o).find("--restart"), std::string::npos);
  o.restart = "on-failure:x";
  EXPECT_NE(refused(o).find("on-failure:3"), std::string::npos);
  o = {};
  o.restart = "always";
  o.remove = true;
  EXPECT_NE(refused(o).find("--rm"), std::string::npos);
  o = {};
  o.log_driver = "syslog";
  EXPECT_NE(refused(o).find("syslog"), std::string::npos);
  o = {};
  o.log_opts = {"max-size=lots"};
  EXPECT_NE(refused(o).find("max-size"), std::string::npos);
  o = {};
  o.log_driver = "passthrough";
  o.detach = true;
  EXPECT_NE(refused(o).find("-d"), std::string::npos);
  o = {};
  o.detach_keys = "ctrl-1";
  EXPECT_NE(refused(o).find("--detach-keys"), std::string::npos);
  o = {};
  o.labels = {"=x"};
  EXPECT_NE(refused(o).find("--label"), std::string::npos);
}

}  // namespace
