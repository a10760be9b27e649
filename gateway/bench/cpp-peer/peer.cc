// The C++ gRPC peer of DESIGN §5: genesys.cs.v1.ContextServices on Debian's libgrpc++ (1.51),
// async completion-queue API, one application thread polling one completion queue.
//
//   peer --listen 127.0.0.1:50061 [--outstanding 512]
//
// StartService creates a service (ids 1, 2, …); StartTask answers task_id = the next number of
// that service's in-memory counter and location = {base}/service/{sid}/tasks/{tid} (sic: the
// proto and the core spell it so), like the gateway over an in-memory core; an unknown service
// is NOT_FOUND. Every other method is UNIMPLEMENTED (the generated AsyncService leaves them so).
// gRPC's own background threads (timers, executor) exist besides the one application thread;
// the benchmark pins the whole process to one CPU with taskset. Prints
// "peer listening address=h2c://HOST:PORT" once it serves; SIGTERM/SIGINT stop it.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "genesys/cs/v1/context_services.grpc.pb.h"

namespace cs = genesys::cs::v1;

namespace {

const std::string kBase = "/genesys/1/cs";

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
bool g_shutting_down = false;  // no new calls are posted once the queue is shutting down

struct Store {
  int64_t next_service = 1;
  std::unordered_map<int64_t, int32_t> last_task;  // service id -> last task id
};

// One in-flight call of either kind; its address is the completion-queue tag.
class Call {
 public:
  virtual ~Call() = default;
  virtual void Proceed(bool ok) = 0;
};

class StartTaskCall final : public Call {
 public:
  StartTaskCall(cs::ContextServices::AsyncService* service, grpc::ServerCompletionQueue* cq, Store* store)
      : service_(service), cq_(cq), store_(store), responder_(&ctx_) {
    service_->RequestStartTask(&ctx_, &request_, &responder_, cq_, cq_, this);
  }
  void Proceed(bool ok) override {
    if (!answered_) {
      if (!ok) { delete this; return; }  // the server is shutting down
      if (!g_shutting_down) new StartTaskCall(service_, cq_, store_);  // keep one waiting for the next call
      answered_ = true;
      auto it = store_->last_task.find(request_.service_id());
      if (it == store_->last_task.end()) {
        responder_.FinishWithError(grpc::Status(grpc::StatusCode::NOT_FOUND, "no such service"), this);
        return;
      }
      int32_t tid = ++it->second;
      reply_.set_task_id(tid);
      reply_.set_location(kBase + "/service/" + std::to_string(request_.service_id()) + "/tasks/" + std::to_string(tid));
      responder_.Finish(reply_, grpc::Status::OK, this);
    } else {
      delete this;
    }
  }

 private:
  cs::ContextServices::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  Store* store_;
  grpc::ServerContext ctx_;
  cs::StartTaskRequest request_;
  cs::StartTaskResponse reply_;
  grpc::ServerAsyncResponseWriter<cs::StartTaskResponse> responder_;
  bool answered_ = false;
};

class StartServiceCall final : public Call {
 public:
  StartServiceCall(cs::ContextServices::AsyncService* service, grpc::ServerCompletionQueue* cq, Store* store)
      : service_(service), cq_(cq), store_(store), responder_(&ctx_) {
    service_->RequestStartService(&ctx_, &request_, &responder_, cq_, cq_, this);
  }
  void Proceed(bool ok) override {
    if (!answered_) {
      if (!ok) { delete this; return; }
      if (!g_shutting_down) new StartServiceCall(service_, cq_, store_);
      answered_ = true;
      int64_t sid = store_->next_service++;
      store_->last_task[sid] = 0;
      reply_.set_service_id(sid);
      reply_.set_location(kBase + "/services/" + std::to_string(sid));
      responder_.Finish(reply_, grpc::Status::OK, this);
    } else {
      delete this;
    }
  }

 private:
  cs::ContextServices::AsyncService* service_;
  grpc::ServerCompletionQueue* cq_;
  Store* store_;
  grpc::ServerContext ctx_;
  cs::StartServiceRequest request_;
  cs::StartServiceResponse reply_;
  grpc::ServerAsyncResponseWriter<cs::StartServiceResponse> responder_;
  bool answered_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:50061";
  int outstanding = 512;  // StartTask calls posted ahead: more than h2load's 8 × 32 streams
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--listen") && i + 1 < argc) listen = argv[++i];
    else if (!std::strcmp(argv[i], "--outstanding") && i + 1 < argc) outstanding = std::atoi(argv[++i]);
    else { std::fprintf(stderr, "usage: %s [--listen HOST:PORT] [--outstanding N]\n", argv[0]); return 2; }
  }

  cs::ContextServices::AsyncService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) { std::fprintf(stderr, "peer: cannot listen on %s\n", listen.c_str()); return 1; }
  std::string host = listen.substr(0, listen.rfind(':'));
  std::printf("peer listening address=h2c://%s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  Store store;
  for (int i = 0; i < outstanding; ++i) new StartTaskCall(&service, cq.get(), &store);
  for (int i = 0; i < 4; ++i) new StartServiceCall(&service, cq.get(), &store);

  // The one application thread: poll with a deadline so that a signal is noticed.
  void* tag;
  bool ok;
  for (;;) {
    auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(200);
    auto status = cq->AsyncNext(&tag, &ok, deadline);
    if (status == grpc::CompletionQueue::SHUTDOWN) break;
    if (status == grpc::CompletionQueue::GOT_EVENT) static_cast<Call*>(tag)->Proceed(ok);
    if (g_stop && !g_shutting_down) {
      g_shutting_down = true;
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
      cq->Shutdown();
    }
  }
  return 0;
}
