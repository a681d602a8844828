"""CRI Version over a unix socket with the real grpcio client (grpc-core).

usage: python cri_version.py STUBS_DIR TARGET
TARGET is a gRPC target such as unix:///run/crius/crius.sock or unix:relative/crius.sock.
Prints the runtime name; exits non-zero with grpc's status code and details on failure.
"""
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
import api_pb2  # noqa: E402
import api_pb2_grpc  # noqa: E402

target = sys.argv[2]
with grpc.insecure_channel(target) as channel:
    stub = api_pb2_grpc.RuntimeServiceStub(channel)
    try:
        # Twice: the second request may refer to the first one's :authority by HPACK index.
        for _ in range(2):
            reply = stub.Version(api_pb2.VersionRequest(), timeout=20)
    except grpc.RpcError as e:
        print(f"{target}: {e.code()}: {e.details()}", file=sys.stderr)
        sys.exit(1)
    print(reply.runtime_name)
