import type { FtMessage } from '@ftvm/core';

export declare const KV_PUT_ENTRIES: number;
export declare function kvPutLogMessage(seq: number, icount: number): FtMessage;
