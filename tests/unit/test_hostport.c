/* tests/unit/test_hostport.c - "ADDR:PORT" / "[V6]:PORT" splitting. */
#include <errno.h>
#include <string.h>

#include "common/hostport.h"
#include "tests/unit/harness.h"

int main(void)
{
	static const struct {
		const char *in;
		int rc;
		const char *host;
		unsigned port;
		bool v6;
	} cases[] = {
		{ "127.0.0.1:5300", 0, "127.0.0.1", 5300, false },
		{ "[::1]:53", 0, "::1", 53, true },
		{ "[2001:db8::1]:65535", 0, "2001:db8::1", 65535, true },
		{ "localhost:0", 0, "localhost", 0, false },
		{ "127.0.0.1", -EINVAL, NULL, 0, false },         /* no port */
		{ "127.0.0.1:", -EINVAL, NULL, 0, false },
		{ ":53", -EINVAL, NULL, 0, false },               /* no host */
		{ "::1:53", -EINVAL, NULL, 0, false },            /* unbracketed v6 */
		{ "[::1]53", -EINVAL, NULL, 0, false },
		{ "[::1:53", -EINVAL, NULL, 0, false },
		{ "127.0.0.1:65536", -EINVAL, NULL, 0, false },
		{ "127.0.0.1:-1", -EINVAL, NULL, 0, false },
		{ "127.0.0.1:53x", -EINVAL, NULL, 0, false },
		{ "[]:53", -EINVAL, NULL, 0, false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[64] = "";
		unsigned port = 99999;
		bool v6 = false;
		int rc = hostport_split(cases[i].in, host, sizeof(host), &port, &v6);

		CHECK(rc == cases[i].rc, "%s: rc %d, want %d", cases[i].in, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0)
			CHECK(strcmp(host, cases[i].host) == 0 && port == cases[i].port &&
			      v6 == cases[i].v6, "%s: got %s %u %d", cases[i].in, host,
			      port, v6);
	}
	{
		char small[4];
		unsigned port;
		bool v6;

		CHECK(hostport_split("localhost:1", small, sizeof(small), &port, &v6) ==
		      -EINVAL, "host longer than the buffer must fail");
	}
	return TEST_DONE();
}
