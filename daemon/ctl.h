/*
 * iotbridgectl's commands that live in their own files. Each takes the
 * arguments from the command name on (argv[0] is "passwd") and returns the
 * process exit status: 0 done, 1 failed, 2 usage error.
 */
#ifndef IOTB_CTL_H
#define IOTB_CTL_H

/*
 * iotbridgectl passwd [-D] FILE USER: add, replace or (-D) delete USER's
 * entry in a password file (auth/passwd.h format), rewriting it atomically.
 */
int	ctl_passwd(int argc, char *argv[]);

#endif
