import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';

async function bootstrap() {
  // Production: only warnings and errors (Nest never logs per request by default).
  const app = await NestFactory.create(AppModule, {
    logger: ['error', 'warn'],
    // Open SSE streams would otherwise hold app.close() until every client leaves.
    forceCloseConnections: true,
  });
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
}

void bootstrap();
