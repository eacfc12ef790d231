/** The NOTIFY payload, as the benchmark's database sends it (snake_case). */
export interface BenchNotification {
  id: number;
  type: string;
  target_user_id: string;
  data: unknown;
}

/** The event as the recipe carries it through its Subject (camelCase). */
export interface BenchEvent {
  id: number;
  type: string;
  targetUserId: string;
  payload: unknown;
}
