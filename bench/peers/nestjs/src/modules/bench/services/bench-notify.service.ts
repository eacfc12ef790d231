import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Client } from 'pg';
import { Subject } from 'rxjs';
import { BenchEvent, BenchNotification } from '../domain/bench-event';

@Injectable()
export class BenchNotifyService implements OnModuleInit, OnModuleDestroy {
  private client: Client;
  private subject = new Subject<BenchEvent>();
  private readonly channel = process.env.PEER_CHANNEL ?? 'bench_peer';

  readonly events$ = this.subject.asObservable();

  async onModuleInit() {
    this.client = new Client(process.env.DATABASE_URL);
    await this.client.connect();
    await this.client.query(`LISTEN ${this.client.escapeIdentifier(this.channel)}`);

    this.client.on('notification', (msg) => {
      if (msg.channel === this.channel && msg.payload) {
        const raw = JSON.parse(msg.payload) as BenchNotification;
        this.subject.next({
          id: raw.id,
          type: raw.type,
          targetUserId: raw.target_user_id,
          payload: raw.data,
        });
      }
    });
  }

  async onModuleDestroy() {
    await this.client?.end();
  }
}
