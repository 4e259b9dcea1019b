/*
 * The control socket: a unix stream socket (control.socket, mode 0660) where
 * iotbridgectl asks the running daemon for its status or a reload. One
 * request line per connection, one answer, then the daemon closes:
 *
 *	"status"       the status as aligned "key: value" lines
 *	"status json"  the same as one JSON object on one line
 *	"reload"       what SIGHUP does; "ok: ..." or "error: ..." followed by
 *	               the configuration's errors, one per line
 *
 * Anything else is answered "error: unknown command ...". A line longer than
 * CONTROL_MAX_LINE bytes (its newline included), or none within
 * CONTROL_TIMEOUT_S seconds, closes the connection; at most CONTROL_MAX_CONNS
 * are served at once. docs/operations.md describes the protocol for users.
 */
#ifndef IOTB_CONTROL_H
#define IOTB_CONTROL_H

struct event_base;
struct broker;
struct bridge;
struct cfg_diag;
struct control;

#define CONTROL_MAX_LINE	256
#define CONTROL_TIMEOUT_S	5
#define CONTROL_MAX_CONNS	8
#define CONTROL_SOCKET_MODE	0660

/*
 * Reload the configuration as SIGHUP does. Returns 0 when the new one runs,
 * 1 when it runs but some of it could not be applied (logged), -1 when it
 * was refused: then its error lines are appended to errors.
 */
typedef int	(*control_reload_fn)(void *arg, struct cfg_diag *errors);

/*
 * Serve the control socket at path (created now; if it cannot be, one
 * warning is logged and the daemon runs on without it). cfg_path (shown in
 * the status), b and br are borrowed and must outlive the control socket.
 * NULL only when out of memory.
 */
struct control	*control_new(struct event_base *base, const char *path,
		    const char *cfg_path, struct broker *b, struct bridge *br,
		    control_reload_fn reload, void *arg);

/* After a reload: move to path if it changed, or try again to create it if
 * it could not be so far. path is copied. */
void		 control_reload(struct control *ctl, const char *path);

/* Remove the socket, close connections, free. NULL is a no-op. */
void		 control_free(struct control *ctl);

#endif
