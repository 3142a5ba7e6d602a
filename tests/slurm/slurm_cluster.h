// A real single-node Slurm cluster for the tests, started from a temporary folder: munged,
// slurmctld and slurmd (Debian packages munge and slurm-wlm) run as this test's own child
// processes, with a slurm.conf of one node and one partition, listening on loopback only
// (CommunicationParameters=NoInAddrAny,NoCtldInAddrAny), ports picked free at start.
// Known to work as root without systemd (Debian slurm-wlm 22.05): munged needs -f as root
// and its own --socket, which slurm.conf names with AuthInfo=socket=...
//
// Final job states come from `scontrol` and a job-completion log (JobCompType=jobcomp/filetxt),
// since `sacct` needs slurmdbd and a database (docs/cluster.md).
//
// start() throws std::runtime_error with the reason (and the daemons' log tails) when the
// cluster cannot start: the tests then FAIL, they do not skip. stop() cancels every job of the
// cluster, waits for them to leave, and stops the daemons; the destructor calls it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/process.h"

namespace gsqhw::test {

class SlurmCluster {
 public:
  SlurmCluster() = default;
  ~SlurmCluster() { stop(); }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  void start() {
    char tmpl[] = "/tmp/gsqhw-slurm-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("cannot create a temporary folder for the Slurm cluster");
    dir_ = tmpl;
    for (const char* sub : {"munge", "state", "spool", "log"}) std::filesystem::create_directories(dir_ / sub);
    const std::string munged = program("munged", "munge"), slurmctld = program("slurmctld", "slurmctld (slurm-wlm)"),
                      slurmd = program("slurmd", "slurmd (slurm-wlm)");
    program("sbatch", "slurm-client (slurm-wlm)");

    // A fresh munge key, readable by its owner only (munged refuses anything looser).
    {
      std::ofstream key(dir_ / "munge/munge.key", std::ios::binary);
      std::ifstream random("/dev/urandom", std::ios::binary);
      std::string bytes(1024, '\0');
      random.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      key << bytes;
    }
    std::filesystem::permissions(dir_ / "munge/munge.key", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    write_conf();
    ::setenv("SLURM_CONF", conf().c_str(), 1);

    // -F: stay in the foreground as our child; -f: run although this is root in a folder munged
    // would not choose itself.
    munged_ = spawn({munged, "-F", "-f", "--socket=" + (dir_ / "munge/munge.sock").string(),
                     "--key-file=" + (dir_ / "munge/munge.key").string(),
                     "--pid-file=" + (dir_ / "munge/munged.pid").string(),
                     "--seed-file=" + (dir_ / "munge/munged.seed").string(), "--num-threads=2"},
                    dir_ / "log/munged.out");
    wait_for([&] { return std::filesystem::exists(dir_ / "munge/munge.sock"); }, 15, "munged to create its socket");
    slurmctld_ = spawn({slurmctld, "-D", "-i", "-f", conf().string()}, dir_ / "log/slurmctld.out");
    slurmd_ = spawn({slurmd, "-D", "-N", node_, "-f", conf().string()}, dir_ / "log/slurmd.out");
    wait_for([&] { return node_state().rfind("idle", 0) == 0; }, 45, "the node to become idle in sinfo");
  }

  void stop() {
    if (dir_.empty()) return;
    if (slurmctld_ > 0) {
      // Jobs first: their slurmstepd processes are not our children and would outlive slurmd.
      run_quiet({"scancel", "--user=" + user_});
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (std::chrono::steady_clock::now() < deadline && !queue_empty())
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (pid_t* pid : {&slurmd_, &slurmctld_, &munged_}) terminate(*pid);
    std::error_code ignored;
    if (!std::getenv("GSQHW_KEEP_SLURM")) std::filesystem::remove_all(dir_, ignored);
    dir_.clear();
  }

  std::filesystem::path conf() const { return dir_ / "slurm.conf"; }
  std::filesystem::path jobcomp_log() const { return dir_ / "log/jobcomp.txt"; }

  // Output (stdout+stderr) of a Slurm client command, e.g. {"squeue", "-h"}.
  static std::string output_of(const std::vector<std::string>& argv, int* exit_code = nullptr) {
    auto log = std::filesystem::temp_directory_path() / fmt::format("gsqhw-slurm-test-{}.log", ::getpid());
    ProcessResult r = run_process(argv, std::filesystem::current_path(), log, 60);
    std::filesystem::remove(log);
    if (exit_code) *exit_code = r.exit_code;
    return r.output;
  }

  // The last lines of the daemons' logs, for a failure message.
  std::string log_tails() const {
    std::string text;
    for (const char* name : {"munged.out", "slurmctld.out", "slurmd.out"})
      text += fmt::format("\n--- {}:\n{}", name, tail_lines(read(dir_ / "log" / name), 8));
    return text;
  }

 private:
  static std::string read(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  static std::string program(const std::string& name, const std::string& package) {
    auto found = find_program(name);
    if (found.empty() && std::filesystem::exists("/usr/sbin/" + name)) found = "/usr/sbin/" + name;
    if (found.empty())
      throw std::runtime_error(fmt::format("{} is not installed: the Slurm tests need a real cluster; install "
                                           "the Debian package {} (scripts/setup.sh does)", name, package));
    return found.string();
  }

  // A TCP port free on loopback right now.
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("cannot find a free loopback port for the Slurm cluster");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  void write_conf() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const char* user = std::getenv("USER");
    user_ = ::geteuid() == 0 ? "root" : (user ? user : "root");
    const std::string& me = user_;
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    std::ofstream out(conf());
    out << fmt::format(
        "# One node, one partition, on loopback; written by the gsqhw Slurm tests.\n"
        "ClusterName=gsqhwtest\n"
        "SlurmctldHost={host}(127.0.0.1)\n"
        "SlurmctldPort={ctld_port}\n"
        "SlurmdPort={d_port}\n"
        "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny\n"
        "SlurmUser={me}\nSlurmdUser={me}\n"
        "AuthType=auth/munge\nCredType=cred/munge\n"
        "AuthInfo=socket={dir}/munge/munge.sock\n"
        "StateSaveLocation={dir}/state\n"
        "SlurmdSpoolDir={dir}/spool\n"
        "SlurmctldPidFile={dir}/slurmctld.pid\nSlurmdPidFile={dir}/slurmd.pid\n"
        "SlurmctldLogFile={dir}/log/slurmctld.log\nSlurmdLogFile={dir}/log/slurmd.log\n"
        "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
        "SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n"
        "MpiDefault=none\nReturnToService=2\nSchedulerType=sched/backfill\n"
        // No slurmdbd: final states from scontrol (MinJobAge) and the job-completion log.
        "AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n"
        "JobCompType=jobcomp/filetxt\nJobCompLoc={dir}/log/jobcomp.txt\n"
        "MinJobAge=300\nKillWait=2\nInactiveLimit=0\nSlurmctldTimeout=30\nSlurmdTimeout=30\n"
        "NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN\n"
        "PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP\n",
        fmt::arg("host", host), fmt::arg("ctld_port", free_port()), fmt::arg("d_port", free_port()),
        fmt::arg("me", me), fmt::arg("dir", dir_.string()), fmt::arg("node", node_), fmt::arg("cpus", cpus));
  }

  static pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::setpgid(0, 0);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return pid;
  }

  static void terminate(pid_t& pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }

  // Fails with the reason when `ready` stays false for `seconds`, or a daemon exited.
  template <typename Ready>
  void wait_for(Ready ready, int seconds, const std::string& what) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ready()) return;
      for (pid_t* pid : {&munged_, &slurmctld_, &slurmd_}) {
        int status = 0;
        if (*pid > 0 && ::waitpid(*pid, &status, WNOHANG) == *pid) {
          *pid = -1;
          throw std::runtime_error(fmt::format("a Slurm daemon exited while waiting for {}; logs in {}:{}", what,
                                               dir_.string(), log_tails()));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    throw std::runtime_error(fmt::format("the test Slurm cluster did not start: no {} within {} s (sinfo says '{}'); "
                                         "logs in {}:{}", what, seconds, node_state(), dir_.string(), log_tails()));
  }

  std::string node_state() const {
    int rc = 0;
    std::string out = output_of({"sinfo", "-h", "-n", node_, "-o", "%T"}, &rc);
    return rc == 0 ? out : "";
  }

  bool queue_empty() const {
    int rc = 0;
    std::string out = output_of({"squeue", "-h"}, &rc);
    return rc != 0 || out.find_first_not_of(" \n") == std::string::npos;
  }

  static void run_quiet(const std::vector<std::string>& argv) { output_of(argv); }

  std::filesystem::path dir_;
  std::string node_ = "gsqhwnode";
  std::string user_ = "root";
  pid_t munged_ = -1, slurmctld_ = -1, slurmd_ = -1;
};

}  // namespace gsqhw::test
