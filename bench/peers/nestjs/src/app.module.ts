import { Module } from '@nestjs/common';
import { HealthController } from './health.controller';
import { BenchModule } from './modules/bench/bench.module';

@Module({
  imports: [BenchModule],
  controllers: [HealthController],
})
export class AppModule {}
