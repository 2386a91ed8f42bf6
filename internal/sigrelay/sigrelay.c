// A signal handler that only records the signal: it writes the signal number, as one byte, to a
// pipe that Go code reads. See sigrelay.go for why this is not package os/signal.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sigrelay.h"

static int relay_fd = -1;
static struct sigaction saved[65];

static void on_signal(int sig)
{
	int saved_errno = errno;
	unsigned char b = (unsigned char)sig;
	// The pipe is non-blocking: when it is full, the signal is dropped, as a kernel does with a
	// pending standard signal that arrives again.
	if (write(relay_fd, &b, 1) < 0) {
	}
	errno = saved_errno;
}

int berth_sigrelay_install(int fd, const int *sigs, int n)
{
	relay_fd = fd;
	for (int i = 0; i < n; i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		// SA_ONSTACK: Go threads run handlers on their own signal stacks (a requirement of the Go
		// runtime for foreign handlers); SA_RESTART keeps Go's system calls from failing with EINTR.
		sa.sa_flags = SA_ONSTACK | SA_RESTART;
		sigfillset(&sa.sa_mask);
		if (sigs[i] <= 0 || sigs[i] >= 65 || sigaction(sigs[i], &sa, &saved[sigs[i]]) < 0)
			return sigs[i];
	}
	return 0;
}

void berth_sigrelay_restore(const int *sigs, int n)
{
	for (int i = 0; i < n; i++)
		if (sigs[i] > 0 && sigs[i] < 65)
			sigaction(sigs[i], &saved[sigs[i]], NULL);
}
