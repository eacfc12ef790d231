import { Module } from '@nestjs/common';
import { BenchSseController } from './adapters/inbound/bench-sse.controller';
import { BenchNotifyService } from './services/bench-notify.service';

@Module({
  controllers: [BenchSseController],
  providers: [BenchNotifyService],
})
export class BenchModule {}
