/*
 * What the files of the MQTT codec share and nobody else may use: the
 * property section (mqtt_props.c), the reason code table (mqtt_reason.c) and
 * the string checks every field goes through (mqtt.c).
 */
#ifndef IOTB_MQTT_INT_H
#define IOTB_MQTT_INT_H

#include "mqtt/mqtt.h"

/*
 * Where a property section sits: a packet type, or MQTT_PROPS_WILL for the
 * Will Properties of a CONNECT (type 0 is reserved, so the value is free).
 */
#define MQTT_PROPS_WILL	0

/* 1 << where, the bit the property and reason code tables use. */
uint32_t	mqtt_where_bit(unsigned where);

/*
 * Read a Property Length and the section it covers into *p (zeroed by the
 * caller): single-valued properties into their fields, the repeatable ones
 * only marked present. Finds what only the wire shows: lengths, unknown,
 * misplaced and duplicated identifiers. Values are left to mqtt_props_check().
 */
enum mqtt_status mqtt_props_read(struct buf_reader *r, unsigned where,
		    struct mqtt_props *p);

/* Validate the properties *p would be encoded with: placement, value ranges,
 * strings, and the entries taken from the user_props and sub_ids lists. */
enum mqtt_status mqtt_props_check(const struct mqtt_props *p, unsigned where);

/* Append the Property Length and the properties; *p must have passed
 * mqtt_props_check(). */
void		mqtt_props_write(struct buf_writer *w, const struct mqtt_props *p,
		    unsigned where);

/* Would the section be empty? Decides the short forms of acks. */
bool		mqtt_props_empty(const struct mqtt_props *p, unsigned where);

/* Same properties, the repeatable ones compared in order. */
bool		mqtt_props_equal(const struct mqtt_props *a,
		    const struct mqtt_props *b, unsigned where);

/* Is code a valid MQTT 5 reason code for packet type t? */
bool		mqtt_reason_allowed(uint8_t code, enum mqtt_type t);

/* A UTF-8 Encoded String: length, well-formedness, no U+0000. */
enum mqtt_status mqtt_check_string(struct buf_view s);

/* Binary Data: length only. */
enum mqtt_status mqtt_check_binary(struct buf_view b);

/* A topic name that must not be empty: a string without wildcards. */
enum mqtt_status mqtt_check_topic_name(struct buf_view t);

#endif
