import { Controller, Get } from '@nestjs/common';

@Controller('health')
export class HealthController {
  // Nest awaits every onModuleInit (the LISTEN included) before the server
  // listens, so answering at all means the notify service is listening.
  @Get()
  check() {
    return { status: 'ok' };
  }
}
