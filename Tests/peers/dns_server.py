"""A real DNS server for the domain verification tests (dnslib, pinned by scripts/venv.sh), on
loopback, over UDP and TCP on one port.

It answers TXT questions from a JSON file read at every question, so a test changes a record
by writing the file: {"name.example.": ["text", ...], ...}. A name it does not list is
NXDOMAIN; any other question type gets an empty answer.

  --port N        the port, UDP and TCP
  --records FILE  the JSON file of TXT records
"""
import argparse, json, sys, time

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSServer


class FileResolver(BaseResolver):
    def __init__(self, path):
        self.path = path

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        try:
            with open(self.path) as f:
                records = {key.lower(): value for key, value in json.load(f).items()}
        except (OSError, ValueError):
            records = {}
        if name not in records:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for text in records[name]:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(text), ttl=0))
        return reply


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", required=True)
    args = parser.parse_args()
    resolver = FileResolver(args.records)
    servers = [DNSServer(resolver, port=args.port, address="127.0.0.1", tcp=tcp) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    print(f"dns: listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    while all(server.isAlive() for server in servers):
        time.sleep(0.5)


if __name__ == "__main__":
    main()
