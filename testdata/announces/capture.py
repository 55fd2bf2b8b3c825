# Records the request target of each HTTP request and answers with an empty peer list.
import http.server, sys
out = open(sys.argv[2], "ab")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        out.write(self.requestline.encode("latin-1") + b"\n")
        for k, v in self.headers.items():
            if k.lower() in ("user-agent",):
                out.write(("#" + k + ": " + v + "\n").encode())
        out.flush()
        body = b"d8:intervali1800e5:peers0:e"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
