/** Ids in paths and bodies: printable, no separators that could confuse logs or keys. */
export const ID_PATTERN = /^[A-Za-z0-9._:@+-]+$/;
export const ID_MAX_LENGTH = 128;

/** Notification types name template folders: lower-case letters, digits, `_` and `-`. */
export const TYPE_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
export const TYPE_MAX_LENGTH = 64;

export const isId = (value: string): boolean => value.length <= ID_MAX_LENGTH && ID_PATTERN.test(value);
export const isType = (value: string): boolean => value.length <= TYPE_MAX_LENGTH && TYPE_PATTERN.test(value);
