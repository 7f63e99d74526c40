// Optimisation: AdamW, the EMA teacher update, gradient-norm clipping and lr schedules.
export * from './adamw.ts';
export * from './ema.ts';
export * from './clip.ts';
export * from './schedule.ts';
